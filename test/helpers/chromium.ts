/**
 * The Chromium the browser tests drive, brought in by `npm ci` alone: the devDependency
 * `@sparticuz/chromium` ships a brotli-compressed headless Chromium inside the package (no
 * download at install time, no install script), with the NSS/NSPR/expat libraries it links
 * against. Unpacked once into a temp dir and run with those libraries on LD_LIBRARY_PATH, it needs
 * nothing from the system beyond glibc and libgcc (checked with /proc/<pid>/maps on Debian 12).
 *
 * `CHROMIUM_PATH` overrides it (e.g. `/usr/bin/chromium`); a path that does not exist is an error,
 * never a skip.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress } from 'node:zlib';

const PACKAGE = '@sparticuz/chromium';

export interface TestChromium {
  executablePath: string;
  /** Environment for the browser process (the bundled libraries and fonts). */
  env: Record<string, string>;
  /** Where it came from, for failure messages. */
  source: string;
}

/** Flags for a headless Chromium in a container, running as root (no sandbox), talking to nothing. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--no-zygote',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function testChromium(): Promise<TestChromium> {
  const override = process.env['CHROMIUM_PATH'];
  if (override !== undefined && override !== '') {
    if (!existsSync(override)) {
      throw new Error(
        `CHROMIUM_PATH=${override} does not exist: unset it to use the Chromium that \`npm ci\` installs (${PACKAGE})`,
      );
    }
    return { executablePath: override, env: {}, source: `CHROMIUM_PATH=${override}` };
  }
  return bundledChromium();
}

async function bundledChromium(): Promise<TestChromium> {
  let root: string;
  try {
    // build/cjs/index.cjs → the package root.
    root = dirname(dirname(dirname(createRequire(import.meta.url).resolve(PACKAGE))));
  } catch (err) {
    throw new Error(`${PACKAGE} is not installed: run \`npm ci\` (it is a devDependency)`, { cause: err });
  }
  const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
  const dir = join(tmpdir(), `claude-batch-chromium-${version}`);
  if (!existsSync(join(dir, '.complete'))) await unpack(join(root, 'bin'), dir);
  return {
    executablePath: join(dir, 'chromium'),
    env: { LD_LIBRARY_PATH: join(dir, 'lib'), FONTCONFIG_FILE: join(dir, 'fonts.conf') },
    source: `${PACKAGE}@${version} unpacked in ${dir}`,
  };
}

/**
 * Unpacks into a private directory, then renames it into place: test files running in parallel
 * (or two checkouts) never see a half-written browser; the loser of the rename discards its copy.
 */
async function unpack(bin: string, dir: string): Promise<void> {
  const partial = `${dir}.partial-${process.pid}-${Date.now()}`;
  await mkdir(join(partial, 'lib'), { recursive: true });
  try {
    await pipeline(
      createReadStream(join(bin, 'chromium.br')),
      createBrotliDecompress(),
      createWriteStream(join(partial, 'chromium'), { mode: 0o755 }),
    );
    await untar(join(bin, 'al2023.tar.br'), partial); // lib/: libnss3, libnspr4, libexpat…
    await untar(join(bin, 'swiftshader.tar.br'), partial); // next to the binary, where it looks
    await untar(join(bin, 'fonts.tar.br'), partial); // fonts/ (its fonts.conf names Lambda paths)
    await writeFile(
      join(partial, 'fonts.conf'),
      `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n  <dir>${dir}/fonts</dir>\n  <cachedir>${dir}/fonts-cache</cachedir>\n</fontconfig>\n`,
    );
    await writeFile(join(partial, '.complete'), '');
    await rename(partial, dir);
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    if (existsSync(join(dir, '.complete'))) return; // another process unpacked it first
    throw err;
  }
}

/**
 * Extracts a .tar.br with the system `tar` (part of every Debian install), through a file: tar
 * stops reading at the archive's end marker, which would cut a pipe short.
 */
async function untar(file: string, into: string): Promise<void> {
  const archive = join(into, '.unpack.tar');
  await pipeline(createReadStream(file), createBrotliDecompress(), createWriteStream(archive));
  const tar = spawn('tar', ['-x', '--no-same-owner', '-f', archive, '-C', into], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  tar.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    tar.once('error', reject);
    tar.once('close', resolve);
  });
  await rm(archive, { force: true });
  if (code !== 0) throw new Error(`tar -x ${file} exited ${code}: ${stderr}`);
}
