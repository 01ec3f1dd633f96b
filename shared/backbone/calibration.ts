import { fileURLToPath } from 'node:url';

/**
 * The folder of CC0 photos (one subfolder per label) that the code owns for measuring an exported backbone's
 * fidelity; see calibration-photos/LICENSE.md for their source and who reads which.
 */
export function calibrationPhotosDir(): string {
  return fileURLToPath(new URL('./calibration-photos', import.meta.url));
}
