"""One Django project with every authentication scheme side by side."""
