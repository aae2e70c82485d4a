/** The `ferry` command line: options and subcommands, wired to the command modules. */
import { isSea } from 'node:sea';
import { DEFAULT_JOBS } from '@ferry/oci-client/pool';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { Context, GlobalOptions } from './context.js';
import { VERSION } from './version.js';

// Command modules, and the context with the registry client, are imported when their command
// runs: start-up (--help, --version) loads only commander and this file.

function jobs(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('must be a whole number from 1 to 64');
  return n;
}

/** `--version`: ferry's version, then the Node.js that runs it (built in, for the single file). */
function versionText(): string {
  return `${VERSION}\nnode ${process.version}${isSea() ? ' (single executable)' : ''}`;
}

const REFERRERS_HELP = 'signatures, SBOMs, attestations to carry: none, signatures or all';
const REFERRERS_TYPE_HELP = 'only referrers of this artifactType (repeatable)';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function buildProgram(env: NodeJS.ProcessEnv = process.env): Command {
  const program = new Command('ferry')
    .description('Carry container images across an air gap: pack them into one verifiable bundle, load it on the other side.')
    .option('-V, --version', 'output the version number')
    .option('--json', 'print one JSON document on stdout')
    .option('-q, --quiet', 'no progress or log lines')
    .option('--insecure-registry <host>', 'allow plain HTTP or unverified TLS for this host (repeatable)', collect)
    .option('--ca-file <file>', 'trust this PEM CA for registry TLS')
    .option('--debug', 'show stack traces')
    // Usage errors look like every other error: one line starting with "ferry: ".
    // Set before the subcommands are added, which inherit it.
    .configureOutput({ outputError: (str, write) => write(`ferry: ${str.replace(/^error: /, '')}`) });
  const ctx = async (cmd: Command): Promise<Context> => new (await import('./context.js')).Context(cmd.optsWithGlobals<GlobalOptions>(), env);
  // ferry's version only before a command: after one, `--version 1.2.3` meant a chart version and must not pass for success
  program.on('option:version', () => {
    // commander keeps the arguments being parsed in rawArgs (not in its typings)
    const args = (program as unknown as { rawArgs: string[] }).rawArgs;
    const at = Math.max(args.indexOf('--version'), args.indexOf('-V'));
    const names = new Set(program.commands.map((c) => c.name()));
    if (args.slice(0, at).some((a) => names.has(a))) {
      // One line and exit 2, as every usage error; the client is not loaded for it.
      process.stderr.write('ferry: --version is not an option of this command; a chart version goes in --chart-version VERSION or REPO/CHART@VERSION\n');
      throw new CommanderError(2, 'ferry.version', '--version after a command');
    }
    process.stdout.write(`${versionText()}\n`);
    throw new CommanderError(0, 'commander.version', VERSION);
  });

  program
    .command('copy')
    .description('copy an image (every platform, digests kept) from one registry to another')
    .argument('<src>', 'source image reference')
    .argument('<dst>', 'destination image reference')
    .option('--platform <list>', 'only these platforms, e.g. linux/amd64,linux/arm64 (writes a filtered index)')
    .addOption(new Option('--referrers <mode>', REFERRERS_HELP).choices(['none', 'signatures', 'all']).default('all'))
    .option('--referrers-type <type>', REFERRERS_TYPE_HELP, collect)
    .addOption(new Option('-j, --jobs <n>', 'blobs transferred at once').argParser(jobs).default(DEFAULT_JOBS))
    .action(async (src: string, dst: string, opts, cmd: Command) => (await import('./commands/copy.js')).copyCommand(await ctx(cmd), src, dst, opts));

  program
    .command('pack')
    .description('pull images into one content-addressed bundle file (an OCI image layout in a tar)')
    .argument('[images...]', 'image references')
    .option('-o, --output <bundle>', 'the bundle file to write')
    .option('-f, --file <list>', 'a file of references, one a line, # comments (repeatable)', collect)
    .option('--spec <file>', 'a YAML spec holding what the flags can')
    .option(
      '--chart <chart>',
      'carry a Helm chart (directory, .tgz, oci://REGISTRY/REPO[:VERSION], REPO/CHART[@VERSION] or a chart URL) and the images it uses (repeatable)',
      collect,
    )
    .option('--repo <name=url>', 'a Helm chart repository for --chart REPO/CHART, besides helm repositories.yaml (repeatable)', collect)
    .option('--chart-version <version>', 'with --chart REPO/CHART: a version or constraint (4.1.x, ~4.1, >=4 <5); default the newest release')
    .option('--values <file>', 'with --chart: a values file, as helm --values (repeatable)', collect)
    .option('--set <key=value>', 'with --chart: set a value, as helm --set (repeatable)', collect)
    .option('--dependency-update', 'fetch the dependencies a chart directory lists but does not vendor in charts/, as helm dependency build')
    .option('--namespace <namespace>', 'with --chart: the release namespace the charts are rendered for, as helm --namespace (default "default")')
    .option('--kube-version <version>', 'with --chart: the Kubernetes version the charts are rendered for, as helm template --kube-version')
    .option('--chart-optional-images', 'also pack the images only optional chart features use')
    .option('--only-used', "with --chart: pack only the images of the charts' pod specs, not those handed to operators (runtime) or declared in Chart.yaml")
    .option(
      '--skip-image <pattern>',
      'with --chart: do not pack the chart images matching this glob on the normalized reference, e.g. docker.io/bitnami/kubectl:* (repeatable)',
      collect,
    )
    .option('--platform <list>', 'only these platforms, e.g. linux/amd64,linux/arm64 (writes filtered indexes)')
    .addOption(new Option('--referrers <mode>', REFERRERS_HELP).choices(['none', 'signatures', 'all']).default('all'))
    .option('--referrers-type <type>', REFERRERS_TYPE_HELP, collect)
    .option('--docker-platform <platform>', 'the platform manifest.json (docker load, podman load) carries (default: the first --platform, else linux/amd64)')
    .option('--sign <key>', 'sign the bundle with this Ed25519 private key (NAME.key)')
    .option('--base <bundle>', 'write a delta: only blobs this earlier bundle does not carry')
    .option('--split-size <size>', 'write BUNDLE.part-000, -001, … of at most this size (e.g. 4G, 700M)')
    .addOption(new Option('-j, --jobs <n>', `blobs downloaded at once (default ${DEFAULT_JOBS})`).argParser(jobs))
    .action(async (images: string[], opts, cmd: Command) => (await import('./commands/pack.js')).packCommand(await ctx(cmd), images, opts));

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
    .option('--values-out <dir>', 'write DIR/<chart>.yaml per chart: Helm values (helm install -f) that pull its images from the target')
    .option('--key <pub>', 'refuse the bundle unless signed by this public key and intact (checked before pushing)')
    .option('--name <repo>', 'the repository of images an OCI layout names by a tag alone (skopeo oci:DIR:TAG)')
    .addOption(new Option('-j, --jobs <n>', 'blobs pushed at once').argParser(jobs).default(DEFAULT_JOBS))
    .action(async (bundle: string, opts, cmd: Command) => (await import('./commands/load.js')).loadCommand(await ctx(cmd), bundle, opts));

  program
    .command('serve')
    .description('serve bundles as a read-only registry (OCI distribution pull API), straight from the files')
    .argument('<bundles...>', 'bundle files (a split bundle by its first part; a delta with its base), OCI archives or layout directories')
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:5000')
    .option('--prefix <path>', 'serve every repository under this path prefix')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (with --tls-key)')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert')
    .option('--htpasswd <file>', 'require Basic auth by these bcrypt entries (htpasswd -B)')
    .option('--verify', 'hash every blob before listening (else each on its first read)')
    .option('--insecure-listen', 'allow plain HTTP on a non-loopback address')
    .addOption(new Option('-j, --jobs <n>', 'blob streams (and start-up checks) at once').argParser(jobs).default(DEFAULT_JOBS))
    .action(async (bundles: string[], opts, cmd: Command) => (await import('./commands/serve.js')).serveCommand(await ctx(cmd), bundles, opts));

  program
    .command('mirrors')
    .description('write runtime mirror configs (containerd, k3s, registries.conf) for a bundle and a target, offline')
    .argument('<bundle>', 'a bundle file, an OCI archive or an OCI layout directory')
    .requiredOption('--to <registry>', 'target REGISTRY[:PORT][/PREFIX], as for load')
    .requiredOption('-o, --output <dir>', 'the directory to write containerd/, k3s/ and containers/ into')
    .option('--map <rule>', 'SRC_PREFIX=DST_PREFIX as for load (repeatable)', collect)
    .option('--keep-source-registry', 'names as load --keep-source-registry')
    .action(async (bundle: string, opts, cmd: Command) => (await import('./commands/mirrors.js')).mirrorsCommand(await ctx(cmd), bundle, opts));

  program
    .command('values')
    .description('write Helm values files pointing each chart of a bundle at the target (helm install -f DIR/<chart>.yaml), offline')
    .argument('<bundle>', 'a bundle file, an OCI archive or an OCI layout directory')
    .requiredOption('--to <registry>', 'target REGISTRY[:PORT][/PREFIX], as for load')
    .requiredOption('-o, --output <dir>', 'the directory to write <chart>.yaml into')
    .option('--map <rule>', 'SRC_PREFIX=DST_PREFIX as for load (repeatable)', collect)
    .option('--keep-source-registry', 'names as load --keep-source-registry')
    .option('--values <file>', 'a values file the charts will be installed with, as helm --values (repeatable)', collect)
    .option('--set <key=value>', 'a value the charts will be installed with, as helm --set (repeatable)', collect)
    .option('--namespace <namespace>', 'the release namespace the charts will be installed in, as helm --namespace (default "default")')
    .option('--kube-version <version>', 'the Kubernetes version the charts will be installed on, as helm template --kube-version')
    .action(async (bundle: string, opts, cmd: Command) => (await import('./commands/values.js')).valuesCommand(await ctx(cmd), bundle, opts));

  program
    .command('inspect')
    .description('list the images of a bundle (or OCI archive), their sizes and what de-duplication saved')
    .argument('<bundle>', 'a bundle file, an OCI archive or an OCI layout directory')
    .option('--name <repo>', 'the repository of images an OCI layout names by a tag alone (skopeo oci:DIR:TAG)')
    .action(async (bundle: string, opts, cmd: Command) => (await import('./commands/inspect.js')).inspectCommand(await ctx(cmd), bundle, opts));

  program
    .command('verify')
    .description('check a bundle: structure, every blob re-hashed, and with --key its signature')
    .argument('<bundle>', 'a bundle file, an OCI archive or an OCI layout directory')
    .option('--key <pub>', 'require a valid signature by this public key (NAME.pub)')
    .option('--against <registry>', 'check instead that REGISTRY[/PREFIX] holds every image with the same digest')
    .option('--map <rule>', 'with --against: SRC_PREFIX=DST_PREFIX as for load (repeatable)', collect)
    .option('--keep-source-registry', 'with --against: names as load --keep-source-registry')
    .option('--allow-filtered', 'with --against: accept a digest-pinned image that is at the target only as its --platform filtered index')
    .option('--name <repo>', 'the repository of images an OCI layout names by a tag alone (skopeo oci:DIR:TAG)')
    .addOption(new Option('-j, --jobs <n>', 'blobs re-hashed or checked at once').argParser(jobs).default(DEFAULT_JOBS))
    .action(async (bundle: string, opts, cmd: Command) => (await import('./commands/verify.js')).verifyCommand(await ctx(cmd), bundle, opts));

  program
    .command('images')
    .description('list the images a Helm chart needs, or check an image list against them')
    .option('--chart <chart>', 'a chart directory, .tgz file, oci://REGISTRY/REPO[:VERSION], REPO/CHART[@VERSION] or a chart URL (repeatable)', collect)
    .option('--repo <name=url>', 'a Helm chart repository for --chart REPO/CHART, besides helm repositories.yaml (repeatable)', collect)
    .option('--chart-version <version>', 'with --chart REPO/CHART: a version or constraint (4.1.x, ~4.1, >=4 <5); default the newest release')
    .option('--dependency-update', 'fetch the dependencies a chart directory lists but does not vendor in charts/, as helm dependency build')
    .option('-f, --file <rendered>', 'rendered manifests (helm template output), - for stdin (repeatable)', collect)
    .option('--values <file>', 'a values file, as helm --values (repeatable)', collect)
    .option('--set <key=value>', 'set a value, as helm --set (repeatable)', collect)
    .option('--namespace <namespace>', 'the release namespace the chart is rendered for, as helm --namespace (default "default")')
    .option('--kube-version <version>', 'the Kubernetes version the chart is rendered for (.Capabilities.KubeVersion), as helm template --kube-version')
    .option('--check <list>', 'compare with a list file; exit 1 when it lacks an image the chart uses')
    .option('--to <registry>', 'with --values-out: the mirror REGISTRY[:PORT][/PREFIX] the images are in, named as load names them')
    .option('--values-out <dir>', 'with --to: write DIR/<chart>.yaml per chart, Helm values that pull its images from the mirror')
    .option('--map <rule>', 'with --to: SRC_PREFIX=DST_PREFIX as for load (repeatable)', collect)
    .option('--keep-source-registry', 'with --to: names as load --keep-source-registry')
    .option('--optional', 'list optional images too (used only when a feature is switched on, or only in values and literals)')
    .option('--only-used', 'list only the images of pod specs, not those handed to operators (runtime) or declared in Chart.yaml')
    .option(
      '--skip-image <pattern>',
      'leave out the images matching this glob on the normalized reference, e.g. docker.io/bitnami/kubectl:* (repeatable)',
      collect,
    )
    .action(async (opts, cmd: Command) => (await import('./commands/images.js')).imagesCommand(await ctx(cmd), opts));

  const key = program.command('key').description('signing keys');
  key
    .command('generate')
    .description('write an Ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub')
    .argument('<name>', 'path prefix of the two files')
    .action(async (name: string, _opts, cmd: Command) => (await import('./commands/key.js')).keyGenerateCommand(await ctx(cmd), name));

  program
    .command('login')
    .description('check credentials against a registry and store them in the docker config file')
    .argument('<registry>', 'registry host[:port]')
    .option('-u, --username <user>', 'user name')
    .option('--password-stdin', 'read the password from standard input')
    .action(async (registry: string, opts, cmd: Command) => (await import('./commands/login.js')).loginCommand(await ctx(cmd), registry, opts));

  return program;
}
