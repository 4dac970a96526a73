'use strict';
// The vecvault CLI's entry: picks the command, parses its arguments, runs it
// and turns the outcome into output and an exit code (docs/CLI.md).
const { EXIT, parse, usageError } = require('./args');

/** Exit code of a command stopped by Ctrl-C (SIGINT): 128 + the signal's number, as shells report it. */
const INTERRUPTED = 130;

const COMMANDS = {
  inspect: () => require('./inspect'),
  stats: () => require('./stats'),
  verify: () => require('./verify'),
  copy: () => require('./transfer').copy,
  export: () => require('./transfer').export,
  import: () => require('./transfer').import,
  bench: () => require('./bench'),
};

const HELP = `Usage: vecvault <command> [options]

Commands:
${Object.keys(COMMANDS)
  .map((c) => `  ${c.padEnd(9)}${COMMANDS[c]().summary}`)
  .join('\n')}

Options:
  --json     machine-readable output on stdout
  -h, --help show help (vecvault <command> --help for a command's)

Secrets come from --key-file <path> (32 raw bytes or 64 hex digits),
--passphrase-file <path>, or the environment (VECVAULT_KEY as hex,
VECVAULT_PASSPHRASE), never from the command line.

Exit codes: 0 success, 1 the operation failed (damage found, I/O error,
wrong key...), 2 usage error, 130 interrupted (Ctrl-C).
`;

function commandHelp(name, cmd) {
  return `Usage: vecvault ${name} ${cmd.usage}\n\n${cmd.summary}\n\n${cmd.help}`;
}

/** The error as the CLI reports it: its code and message, on stderr (JSON with --json). */
function reportError(err, json, io) {
  const code = (err && err.code) || 'ERR_INTERNAL';
  const message = (err && err.message) || String(err);
  if (json) io.stdout.write(JSON.stringify({ ok: false, error: { code, message } }) + '\n');
  io.stderr.write(`vecvault: ${code}: ${message}\n`);
}

/**
 * Runs the CLI for `argv` (without node and the script) and resolves with
 * the exit code. `io`: { stdout, stderr, env, signal? }. Commands pass
 * `io.signal` on to what they run; a command it aborted resolves with 130.
 */
async function main(argv, io) {
  const [name, ...rest] = argv;
  const json = rest.includes('--json');
  try {
    if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
      io.stdout.write(HELP);
      return name === undefined ? EXIT.USAGE : EXIT.OK;
    }
    if (!Object.hasOwn(COMMANDS, name)) throw usageError(`unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
    const cmd = COMMANDS[name]();
    const { values, args } = parse(rest, cmd.options, cmd.positionals);
    if (values.help) {
      io.stdout.write(commandHelp(name, cmd));
      return EXIT.OK;
    }
    const out = await cmd.run(args, values, io);
    if (values.json) io.stdout.write(JSON.stringify({ ok: !out.failed, ...out.json }) + '\n');
    else io.stdout.write(out.text.endsWith('\n') ? out.text : out.text + '\n');
    return out.failed ? EXIT.FAILED : EXIT.OK;
  } catch (err) {
    if (io.signal && io.signal.aborted) {
      reportError({ code: 'ERR_ABORTED', message: 'interrupted (Ctrl-C); the operation was stopped' }, json, io);
      return INTERRUPTED;
    }
    reportError(err, json, io);
    if (err && err.usage) io.stderr.write(`Run 'vecvault ${Object.hasOwn(COMMANDS, name) ? name + ' ' : ''}--help' for usage.\n`);
    return err && err.usage ? EXIT.USAGE : EXIT.FAILED;
  }
}

module.exports = { main, INTERRUPTED };
