"""Kong gateway config: one DB-less declarative template, its renderer and checks,
and the local nginx gateway generated from the rendered file."""
