"""The prompt registry: versioned prompt files, references, sandboxed rendering, schema checks."""
