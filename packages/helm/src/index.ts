/**
 * @ferry/helm: Helm charts without the helm binary. Go's text/template (parser
 * and executor), the function library by family (Go builtins, Sprig, Helm),
 * values as Helm computes them, chart loading (directories, .tgz, oci://,
 * subcharts, requirements.yaml, classic Helm repositories) and rendering. Knows nothing of bundles.
 */

export { chartDirectoryFiles, MAX_CHART_BYTES } from './chart-dir.js';
export {
  type Chart,
  type ChartDependency,
  chartFromArchive,
  chartFromFiles,
  HELM_CHART_CONFIG_MEDIA_TYPE,
  HELM_CHART_CONTENT_MEDIA_TYPE,
  type LoadChartOptions,
  loadChart,
  loadOciChart,
  yamlFile,
} from './chart-load.js';
export { jsonText, parseYamlValue, toYaml, yamlDocuments } from './encoding.js';
export { deepCopy } from './funcs/convert.js';
export { helmFuncs } from './funcs/func-map.js';
export type { HelmFuncOptions } from './funcs/helm.js';
export { compareSemver, parseSemver, type SemVer, semverSatisfies } from './funcs/semver.js';
export { type HelmignoreRule, helmIgnores, parseHelmignore } from './helmignore.js';
export {
  allInstances,
  type ChartInstance,
  DEFAULT_KUBE_VERSION,
  type RenderedTemplate,
  type RenderFailure,
  type RenderOptions,
  type RenderResult,
  type ResolveOptions,
  renderChart,
  resolveChart,
} from './render.js';
export { buildDependencies, type DependencyBuildOptions } from './repo/dependencies.js';
export { type IndexVersion, indexUrl, parseRepoIndex, pickVersion, type RepoIndex, resolveChartUrl } from './repo/index-file.js';
export {
  HelmRepositories,
  type HelmRepositoriesOptions,
  MAX_INDEX_BYTES,
  parseRepoChartName,
  type RepoChart,
  repoLabel,
} from './repo/repo-client.js';
export { configuredRepositories, helmRepositoryConfigPath, parseRepoFlag, parseRepositoriesYaml, type RepoEntry } from './repo/repositories.js';
export { hasOwn, isMap, put, type Segment, sourceAt, TemplateExecError, type TemplateFunc, TemplateSet } from './template/exec.js';
export { type ParsedTemplate, parseTemplate, TemplateSyntaxError } from './template/parse.js';
export { applySet, coalesceChartValues, mergeValues, parseValues, readValuesFile, userValues, type Values } from './values.js';
