// Builds the viewer into dist/ (what Invicta serves at /apps/viewer/): the NHS design system's
// Sass compiled with the app's own styles, the app's modules bundled with the SMART client
// library, and the page. Nothing in dist/ is committed.
//
//   npm run build
import { mkdir, copyFile, writeFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import * as esbuild from 'esbuild';
import * as sass from 'sass';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'dist');
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

const css = sass.compile(path.join(here, 'src/viewer.scss'), {
  loadPaths: [path.join(here, 'node_modules')],
  style: 'compressed',
  quietDeps: true,
});
await writeFile(path.join(dist, 'viewer.css'), css.css);

await esbuild.build({
  entryPoints: [path.join(here, 'src/main.js')],
  outfile: path.join(dist, 'viewer.js'),
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  legalComments: 'none',
  logLevel: 'warning',
});

await copyFile(path.join(here, 'src/index.html'), path.join(dist, 'index.html'));
await copyFile(
  path.join(here, 'node_modules/nhsuk-frontend/dist/nhsuk/assets/images/favicon.svg'),
  path.join(dist, 'favicon.svg'),
);
console.log(`viewer built in ${path.relative(process.cwd(), dist) || dist}`);
