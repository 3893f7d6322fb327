"""HTTP routes, one module per area; each route is a thin shell over tain.service."""
