"""The local instance: what `make up` runs when no STACK is given, without an AWS account.

    python -m tools.local up     # build, start, `pulumi up` the stack `local`; print curl lines
    python -m tools.local down   # destroy it, stop every process, delete its files

The shipped stack `stacks/Pulumi.local.yaml` deployed by the real program through the real
Pulumi engine (`make engine`) onto the local cluster (`tools.cluster`: a real Kubernetes
control plane, kwok's simulated nodes, the gateway's pods as local HAProxy processes on
127.0.0.1:8443, stand-ins for the load balancer controller and cert-manager), with a real
Cortex in place of Mimir and no Loki. One module per job:
- `home`: where its files are (`.engine/local/`), its stack, its processes;
- `cortex`: a Cortex's configuration (the end-to-end tests run the same);
- `no_loki`: what answers at the logs backend's address instead of a Loki;
- `processes`: both as supervised processes; `remote_write`: a push body for curl;
- `curl`: the printed endpoints and curl lines; `up_down`: up, down.
"""
