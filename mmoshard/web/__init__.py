"""HTTP sites: the public site shared by roles, the admin site, JSON helpers."""
