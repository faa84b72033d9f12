"""Pure rules of the instance, on the operator's side: names, keys, token claims, the
stack's configuration, tenant policy, the documents and files the components register.

Nothing here imports Pulumi or registers a resource (a test checks): every rule is a
plain function with plain tests, reused by the operator's tools. The components that
register resources are in `components`; the code that runs inside the gateway's pods
is in `sidecar`.
"""
