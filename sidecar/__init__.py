"""What runs inside the gateway's pods: the sync sidecar and the Kubernetes client it
uses, on the Python standard library alone. The pod gets exactly these files (a test
checks that they import nothing else); the operator's side imports the pod's
contract and the client from here too.
"""
