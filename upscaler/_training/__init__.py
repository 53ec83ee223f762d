"""Training and export of the ESPCN network (the keras extra)."""
