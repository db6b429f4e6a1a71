"""Pydantic models of everything on the wire, one module per resource."""
