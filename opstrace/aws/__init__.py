"""AWS documents and arithmetic: IAM policies (`iam`), the VPC's subnets (`subnets`) and
zones (`zones`), EKS's version calendar and add-on pins (`eks_versions`), cluster admins'
access entries (`access_entries`), and the kubeconfig of an EKS cluster (`eks_kubeconfig`)."""
