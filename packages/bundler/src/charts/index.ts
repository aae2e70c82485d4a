export * from './chart-load.js';
export * from './check.js';
export * from './discover.js';
export {
  chartArchive,
  chartDirectoryFiles,
  goJson,
  type HelmArtifact,
  helmArtifact,
  helmChartConfig,
  helmIgnores,
  parseHelmignore,
} from './helm-artifact.js';
export { imagesInManifests, type ManifestImage, type ManifestImageField } from './manifests.js';
export * from './pack-charts.js';
export { allInstances, type ChartInstance, type RenderedTemplate, type RenderResult, renderChart, resolveChart } from './render.js';
export * from './report.js';
export { type AnnotatedImage, annotatedImages, type LiteralImage, literalImages, type ValuesImage, valuesImages } from './sources.js';
export { applySet, coalesceChartValues, parseValues, userValues, type Values } from './values.js';
