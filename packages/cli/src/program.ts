/** The `ferry` command line: options and subcommands, wired to the command modules. */
import { DEFAULT_JOBS } from '@ferry/oci-client';
import { Command, InvalidArgumentError, Option } from 'commander';
import { Context, type GlobalOptions, VERSION } from './context.js';

// Command modules are imported when their command runs: start-up loads only what it uses.

function jobs(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('must be a whole number from 1 to 64');
  return n;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function buildProgram(env: NodeJS.ProcessEnv = process.env): Command {
  const program = new Command('ferry')
    .description('Carry container images across an air gap: pack them into one verifiable bundle, load it on the other side.')
    .version(VERSION)
    .option('--json', 'print one JSON document on stdout')
    .option('-q, --quiet', 'no progress or log lines')
    .option('--insecure-registry <host>', 'allow plain HTTP or unverified TLS for this host (repeatable)', collect)
    .option('--ca-file <file>', 'trust this PEM CA for registry TLS')
    .option('--debug', 'show stack traces')
    // Usage errors look like every other error: one line starting with "ferry: ".
    // Set before the subcommands are added, which inherit it.
    .configureOutput({ outputError: (str, write) => write(`ferry: ${str.replace(/^error: /, '')}`) });
  const ctx = (cmd: Command): Context => new Context(cmd.optsWithGlobals<GlobalOptions>(), env);

  program
    .command('copy')
    .description('copy an image (every platform, digests kept) from one registry to another')
    .argument('<src>', 'source image reference')
    .argument('<dst>', 'destination image reference')
    .option('--platform <list>', 'only these platforms, e.g. linux/amd64,linux/arm64 (writes a filtered index)')
    .addOption(new Option('-j, --jobs <n>', 'blobs transferred at once').argParser(jobs).default(DEFAULT_JOBS))
    .action((src: string, dst: string, opts, cmd: Command) => import('./commands/copy.js').then((c) => c.copyCommand(ctx(cmd), src, dst, opts)));

  program
    .command('pack')
    .description('pull images into one content-addressed bundle file (an OCI image layout in a tar)')
    .argument('[images...]', 'image references')
    .option('-o, --output <bundle>', 'the bundle file to write')
    .option('-f, --file <list>', 'a file of references, one a line, # comments (repeatable)', collect)
    .option('--spec <file>', 'a YAML spec holding what the flags can')
    .option('--chart <chart>', 'carry a Helm chart (directory, .tgz or oci://REGISTRY/REPO[:VERSION]) and the images it uses (repeatable)', collect)
    .option('--values <file>', 'with --chart: a values file, as helm --values (repeatable)', collect)
    .option('--set <key=value>', 'with --chart: set a value, as helm --set (repeatable)', collect)
    .option('--chart-optional-images', 'also pack the images only optional chart features use')
    .option('--platform <list>', 'only these platforms, e.g. linux/amd64,linux/arm64 (writes filtered indexes)')
    .option('--docker-platform <platform>', 'the platform manifest.json (docker load, podman load) carries (default: the first --platform, else linux/amd64)')
    .option('--sign <key>', 'sign the bundle with this Ed25519 private key (NAME.key)')
    .option('--base <bundle>', 'write a delta: only blobs this earlier bundle does not carry')
    .option('--split-size <size>', 'write BUNDLE.part-000, -001, … of at most this size (e.g. 4G, 700M)')
    .addOption(new Option('-j, --jobs <n>', `blobs downloaded at once (default ${DEFAULT_JOBS})`).argParser(jobs))
    .action((images: string[], opts, cmd: Command) => import('./commands/pack.js').then((c) => c.packCommand(ctx(cmd), images, opts)));

  program
    .command('load')
    .description('push every image of a bundle into a registry (registry:2, Harbor)')
    .argument('<bundle>', 'a bundle file, an OCI archive or an OCI layout directory')
    .requiredOption('--to <registry>', 'target REGISTRY[:PORT][/PREFIX]')
    .option('--map <rule>', 'SRC_PREFIX=DST_PREFIX, longest prefix wins (repeatable)', collect)
    .option('--keep-source-registry', 'keep the source registry host as the first path part')
    .option('--harbor-create-projects', 'create missing Harbor projects (private) through its API')
    .option('--dry-run', 'print what would be pushed; push nothing')
    .option('--mapping-out <file>', 'write source -> target references and digests (.yaml or .json)')
    .option('--mirror-config <dir>', 'write containerd hosts.toml, k3s registries.yaml and registries.conf pointing at the target')
    .option('--key <pub>', 'refuse the bundle unless signed by this public key and intact (checked before pushing)')
    .addOption(new Option('-j, --jobs <n>', 'blobs pushed at once').argParser(jobs).default(DEFAULT_JOBS))
    .action((bundle: string, opts, cmd: Command) => import('./commands/load.js').then((c) => c.loadCommand(ctx(cmd), bundle, opts)));

  program
    .command('mirrors')
    .description('write runtime mirror configs (containerd, k3s, registries.conf) for a bundle and a target, offline')
    .argument('<bundle>', 'a bundle file, an OCI archive or an OCI layout directory')
    .requiredOption('--to <registry>', 'target REGISTRY[:PORT][/PREFIX], as for load')
    .requiredOption('-o, --output <dir>', 'the directory to write containerd/, k3s/ and containers/ into')
    .option('--map <rule>', 'SRC_PREFIX=DST_PREFIX as for load (repeatable)', collect)
    .option('--keep-source-registry', 'names as load --keep-source-registry')
    .action((bundle: string, opts, cmd: Command) => import('./commands/mirrors.js').then((c) => c.mirrorsCommand(ctx(cmd), bundle, opts)));

  program
    .command('inspect')
    .description('list the images of a bundle (or OCI archive), their sizes and what de-duplication saved')
    .argument('<bundle>', 'a bundle file, an OCI archive or an OCI layout directory')
    .action((bundle: string, _opts, cmd: Command) => import('./commands/inspect.js').then((c) => c.inspectCommand(ctx(cmd), bundle)));

  program
    .command('verify')
    .description('check a bundle: structure, every blob re-hashed, and with --key its signature')
    .argument('<bundle>', 'a bundle file, an OCI archive or an OCI layout directory')
    .option('--key <pub>', 'require a valid signature by this public key (NAME.pub)')
    .option('--against <registry>', 'check instead that REGISTRY[/PREFIX] holds every image with the same digest')
    .option('--map <rule>', 'with --against: SRC_PREFIX=DST_PREFIX as for load (repeatable)', collect)
    .option('--keep-source-registry', 'with --against: names as load --keep-source-registry')
    .addOption(new Option('-j, --jobs <n>', 'blobs re-hashed or checked at once').argParser(jobs).default(DEFAULT_JOBS))
    .action((bundle: string, opts, cmd: Command) => import('./commands/verify.js').then((c) => c.verifyCommand(ctx(cmd), bundle, opts)));

  program
    .command('images')
    .description('list the images a Helm chart needs, or check an image list against them')
    .option('--chart <chart>', 'a chart directory, .tgz file or oci://REGISTRY/REPO[:VERSION] (repeatable)', collect)
    .option('-f, --file <rendered>', 'rendered manifests (helm template output), - for stdin (repeatable)', collect)
    .option('--values <file>', 'a values file, as helm --values (repeatable)', collect)
    .option('--set <key=value>', 'set a value, as helm --set (repeatable)', collect)
    .option('--check <list>', 'compare with a list file; exit 1 when it lacks an image the chart uses')
    .option('--optional', 'list optional images too (used only when a feature is switched on, or only in arguments)')
    .action((opts, cmd: Command) => import('./commands/images.js').then((c) => c.imagesCommand(ctx(cmd), opts)));

  const key = program.command('key').description('signing keys');
  key
    .command('generate')
    .description('write an Ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub')
    .argument('<name>', 'path prefix of the two files')
    .action((name: string, _opts, cmd: Command) => import('./commands/key.js').then((c) => c.keyGenerateCommand(ctx(cmd), name)));

  program
    .command('login')
    .description('check credentials against a registry and store them in the docker config file')
    .argument('<registry>', 'registry host[:port]')
    .option('-u, --username <user>', 'user name')
    .option('--password-stdin', 'read the password from standard input')
    .action((registry: string, opts, cmd: Command) => import('./commands/login.js').then((c) => c.loginCommand(ctx(cmd), registry, opts)));

  return program;
}
