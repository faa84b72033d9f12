"""The data API gateway's configuration, rendered (pure: `components.gateway` registers it).

- `settings`: what a gateway is configured with, its file names, and the rules they keep;
- `routes`: the data API routes that pass (Opstrace's allowlist);
- `upstreams`: where pushes and queries go (the instance's own Mimir and Loki, or others);
- `maps`, `haproxy`: the lookup files and haproxy.cfg;
- `files`: all of them, rendered from settings and keys in one place;
- `manifests`: the Kubernetes objects of the pods, their access and their load balancer.

The pods' sidecar, which loads these files into HAProxy, is `sidecar.sync`.
"""
