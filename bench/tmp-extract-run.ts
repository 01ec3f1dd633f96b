import { initTf } from '../shared/tf/tf-runtime.js';
import { clothingFeatures } from './clothing-features.js';

await initTf({ backend: 'wasm' });
const layers = [
  'flatten_1',
  'block_16_expand_relu',
  'block_16_project_BN',
  'block_15_add',
  'block_14_add',
  'block_13_expand_relu',
  'block_13_depthwise_relu',
  'block_12_expand_relu',
  'block_12_add',
  'dense_1',
];
const r = await clothingFeatures(
  '/work/shared/datasets/clothing-small',
  layers,
  '/work/main/bench/.cache',
  (m) => console.log(m),
);
console.log(
  r.images.length,
  r.skipped,
  r.extractSeconds,
  Object.entries(r.layers).map(([k, v]) => `${k}:${v.dim}`),
);
