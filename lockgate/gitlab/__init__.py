"""GitLab integration: the REST calls the `lockgate ci` jobs and the gateway make."""
