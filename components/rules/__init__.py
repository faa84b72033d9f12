"""Pure rules: names, keys, token claims, configuration, rendered documents.

Nothing in this package imports Pulumi or registers a resource (a test checks), so
every rule can be tested as a plain function and reused by the CLI tools. The
resource-registering components live one level up, in `components`.
"""
