"""A backend's S3 bucket, private and encrypted, and the one role that may use it.

Every bucket: server-side encryption by default, all public access blocked, ACLs off
(the bucket owner owns every object), a policy refusing any request without TLS, and
unfinished multipart uploads cleaned up. Data retention is the backends' own (Mimir's
compactor, Loki's compactor delete what is older than the configured retention); an
S3 expiry behind their backs would break their indexes.

`keep_data_on_destroy` (the default) retains the bucket and its settings when the stack
is destroyed: Pulumi forgets them and says so, the data stays. Otherwise the bucket is
emptied and deleted with the stack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.irsa import service_account_role
from opstrace.aws import iam


@dataclass(frozen=True)
class DataBucketArgs:
    """Whose data the bucket holds and who may read and write it."""

    purpose: str
    """`metrics` or `logs`: part of the bucket's generated name."""
    keep_data_on_destroy: bool
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_host: pulumi.Input[str]
    namespace: str
    service_account: str
    """The backend's service account: the only principal allowed in."""


class DataBucket(pulumi.ComponentResource):
    """One bucket and one IRSA role with access to exactly that bucket."""

    bucket_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: DataBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opstrace:index:DataBucket", name, None, opts)
        keep = args.keep_data_on_destroy
        kept = pulumi.ResourceOptions(parent=self, retain_on_delete=keep)
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket_prefix=f"{name}-"[:37],
            force_destroy=not keep,
            tags={"opstrace.io/data": args.purpose},
            opts=kept,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms"
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=kept,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-private",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=kept,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=kept,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(iam.tls_only_bucket(arn))),
            opts=pulumi.ResourceOptions(
                parent=self, retain_on_delete=keep, depends_on=[public_access]
            ),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="abort-unfinished-uploads",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=7
                    ),
                )
            ],
            opts=kept,
        )
        role = service_account_role(
            f"{name}-access",
            args.oidc_provider_arn,
            args.oidc_issuer_host,
            args.namespace,
            args.service_account,
            parent=self,
            policy=bucket.arn.apply(lambda arn: json.dumps(iam.bucket_access(arn))),
        )
        self.bucket_name = bucket.bucket
        self.role_arn = role.arn
        self.register_outputs({"bucket_name": self.bucket_name, "role_arn": self.role_arn})
