"""The stack's configuration, read and checked once into typed objects.

- `schema`: every setting's key and default, and the typed objects they become;
- `parse`: a stack's settings checked, rule by rule, into an `InstanceConfig`;
- `tenant_config`: one tenant's entry; `platform` and `sizes`: the cluster and the presets;
- `read`: reading one value; `local_files`: paths the stack file names;
- `stack`: a stack read whole (the CLI's config, then the ConfigMaps' capacity).
"""
