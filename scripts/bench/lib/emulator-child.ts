/**
 * The emulator as a child process of the benchmark (see startEmulatorChild): its options come as
 * JSON in argv[2]; it sends `{url}` once listening, answers `stats` and `cpu` over IPC, and exits on
 * `stop`.
 */
import { startEmulator, type EmulatorOptions } from '../../../src/emulator/index.js';

const options = JSON.parse(process.argv[2] ?? '{}') as EmulatorOptions;
const handle = await startEmulator(options);
process.send?.({ url: handle.url });
process.on('message', (message: { type: string; id: number }) => {
  if (message.type === 'stats') process.send?.({ id: message.id, stats: handle.control.stats() });
  else if (message.type === 'cpu') {
    const cpu = process.cpuUsage();
    process.send?.({ id: message.id, cpuMs: (cpu.user + cpu.system) / 1000 });
  } else if (message.type === 'stop') {
    void handle.close().then(() => process.exit(0));
  }
});
process.on('disconnect', () => void handle.close().then(() => process.exit(0)));
