"""The web console's static files (plain ES modules and CSS, no build step), served by
``interfaces.http.console`` at ``/console``."""
