// The CDK app entry (cdk.json: `npx tsx infra/app.ts`). `npx cdk synth` runs offline, without credentials.
import { createHeadstartApp } from './headstart-app.js';

const { app } = await createHeadstartApp();
app.synth();
