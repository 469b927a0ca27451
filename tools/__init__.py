"""Developer tools shared by the services (not imported at runtime)."""
