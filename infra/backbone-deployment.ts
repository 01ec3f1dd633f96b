import { Aws } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { BACKBONE_JSON, BACKBONE_WEIGHTS } from '../shared/backbone/index.js';
import { layout } from '../shared/layout/index.js';
import type { AssetFile, BackboneAsset } from './backbone-asset.js';
import { InfraError } from './infra-errors.js';
import type { TextBackboneAsset } from './text-backbone-asset.js';

export interface BackboneDeploymentProps {
  bucket: s3.IBucket;
  backbone: BackboneAsset;
  /** The built-in text backbone, with `backbones/default-text.json` naming it where the bucket names none. */
  textBackbone: TextBackboneAsset;
}

/** The keys the default backbone lands on; the same layout `saveBackbone` and `setDefaultBackbone` write. */
export function backboneKeys(id: string) {
  return {
    weights: layout.backbone(id, BACKBONE_WEIGHTS),
    manifest: layout.backbone(id, BACKBONE_JSON),
    pointer: layout.defaultBackbonePointer,
  };
}

/** 'mnv2-nsfwjs.block_12_add.224.i8c.spatial-segment.bin' to a construct id. */
function pascal(text: string): string {
  return text
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');
}

/**
 * Puts the default backbone and its fine-tuning trunk into the bucket at deploy time, so no function downloads
 * weights at run time. The files travel as CDK file assets and are copied server-side in the asset's order (each
 * package's weights before the backbone.json whose presence makes it exist), then `backbones/default.json` if the
 * bucket names no default yet; the same for the built-in text backbone and `backbones/default-text.json`. A
 * custom resource rather than s3-deployment's BucketDeployment, whose handler may read and write the whole
 * bucket; each copy may read its one asset object and write its one key, nothing else. Nothing is deleted on
 * stack deletion.
 */
export function deployDefaultBackbone(scope: Construct, props: BackboneDeploymentProps): Construct {
  const c = new Construct(scope, 'DefaultBackbone');
  const { bucket, backbone } = props;
  const keys = backboneKeys(backbone.id);

  const copy = (id: string, asset: s3assets.Asset, key: string, contentType: string) =>
    new cr.AwsCustomResource(c, id, {
      resourceType: 'Custom::HeadstartBackboneFile',
      onUpdate: {
        service: 'S3',
        action: 'copyObject',
        parameters: {
          Bucket: bucket.bucketName,
          Key: key,
          CopySource: `${asset.s3BucketName}/${asset.s3ObjectKey}`,
          ContentType: contentType,
          MetadataDirective: 'REPLACE',
          // Not copying the asset's tags means needing no tagging permissions on either side.
          TaggingDirective: 'REPLACE',
        },
        physicalResourceId: cr.PhysicalResourceId.of(key),
      },
      policy: cr.AwsCustomResourcePolicy.fromStatements([
        new iam.PolicyStatement({
          actions: ['s3:GetObject'],
          resources: [`arn:${Aws.PARTITION}:s3:::${asset.s3BucketName}/${asset.s3ObjectKey}`],
        }),
        new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [bucket.arnForObjects(key)] }),
      ]),
      installLatestAwsSdk: false,
    });

  // Copied one after another in each asset's order (weights before the manifest that makes a package exist).
  const copyAll = (files: readonly AssetFile[]): Construct => {
    let previous: Construct | undefined;
    for (const file of files) {
      const name = pascal(file.key.split('/').slice(1).join('-'));
      const asset = new s3assets.Asset(c, `${name}Asset`, { path: file.path });
      const copied = copy(name, asset, file.key, file.contentType);
      if (previous) copied.node.addDependency(previous);
      previous = copied;
    }
    if (!previous) throw new InfraError('backbone_asset_empty', 'the backbone asset lists no files');
    return previous;
  };

  // Create-if-absent: a bucket that already names a default keeps it, so an upgrade that ships a new built-in
  // backbone never switches extraction under projects whose uploads have no features under it yet. Moving a
  // bucket is `headstart backbone migrate`, which re-extracts first.
  const pointer = (id: string, key: string, pointsTo: string, after: Construct) => {
    const written = new cr.AwsCustomResource(c, id, {
      resourceType: 'Custom::HeadstartBackboneFile',
      onUpdate: {
        service: 'S3',
        action: 'putObject',
        parameters: {
          Bucket: bucket.bucketName,
          Key: key,
          Body: JSON.stringify({ id: pointsTo }),
          ContentType: 'application/json',
          IfNoneMatch: '*',
        },
        ignoreErrorCodesMatching: 'PreconditionFailed',
        physicalResourceId: cr.PhysicalResourceId.of(`${key}:${pointsTo}`),
      },
      policy: cr.AwsCustomResourcePolicy.fromStatements([
        new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [bucket.arnForObjects(key)] }),
      ]),
      installLatestAwsSdk: false,
    });
    written.node.addDependency(after);
    return written;
  };

  pointer('DefaultPointer', keys.pointer, backbone.id, copyAll(backbone.files));
  pointer(
    'DefaultTextPointer',
    layout.defaultTextBackbonePointer,
    props.textBackbone.id,
    copyAll(props.textBackbone.files),
  );
  return c;
}
