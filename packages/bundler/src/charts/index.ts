/**
 * @ferry/bundler/charts: what the bundler does with Helm charts — image
 * discovery (`ferry images`, `--check`), and charts as OCI artifacts in bundles
 * (`pack --chart`). Imported only by the commands that use charts, so `load`
 * and `verify` never load the template engine (@ferry/helm).
 */
export { HelmRepositories, type HelmRepositoriesOptions } from '@ferry/helm';
export { checkImageList, formatImageListCheck, type ImageListCheck, parseImageList, REQUIRED_CLASSES } from './check.js';
export {
  type DiscoveredChart,
  type DiscoveredImage,
  type DiscoverOptions,
  type DiscoveryResult,
  discoverImages,
  IMAGE_CLASSES,
  type ImageSource,
  type ImageSourceKind,
  type ImageUsage,
  originOf,
  type RenderedInput,
  switchesOn,
  type TemplateFailure,
} from './discover.js';
export {
  chartArchive,
  goJson,
  type HelmArtifact,
  helmArtifact,
  helmChartConfig,
} from './helm-artifact.js';
export { imagesInManifests, type ManifestImage, type ManifestImageField } from './manifests.js';
export {
  CHART_ARTIFACT_TYPE,
  CHARTS_PATH,
  type ChartImage,
  type ChartRequest,
  chartRefName,
  chartTag,
  type PrepareChartsOptions,
  type PreparedChart,
  parseChartRefName,
  prepareCharts,
} from './pack-charts.js';
export { type ImagesReport, type ImagesReportOptions, imagesReport } from './report.js';
export { compileSkipPatterns, type SkippedImages } from './skip-images.js';
export { type AnnotatedImage, annotatedImages, type LiteralImage, literalImages, type ValuesImage, valuesImages } from './sources.js';
