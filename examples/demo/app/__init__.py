"""Greenlight's demo application: a tiny shop with logins, registrations and purchases."""
