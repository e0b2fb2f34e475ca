"""Media for template headers: files uploaded once to the provider, their ids kept fresh."""
