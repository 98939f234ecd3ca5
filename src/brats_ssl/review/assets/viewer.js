// brats-ssl review: one case in NiiVue (multiplanar + 3-D render), its layers and the decision.
// The page holds its configuration as JSON (#review-config): NiiVue's module (a server path, or
// inline in a static page), the volumes (URL, or base64 data in a static page), the
// labellings to switch between, the label colours and where decisions are posted (none when static).

const config = JSON.parse(document.getElementById("review-config").textContent);
const status = document.getElementById("viewer-status");
const byId = (id) => document.getElementById(id);

function volumeUrl(ref) {
  if (ref.url) return ref.url;
  const bytes = Uint8Array.from(atob(ref.data), (c) => c.charCodeAt(0));
  return URL.createObjectURL(new Blob([bytes]));
}

async function moduleUrl(niivue) {
  // A server path, or (static page) the gzipped module inline: unpacked into a blob to import.
  if (typeof niivue === "string") return niivue;
  const packed = Uint8Array.from(atob(niivue.gzip_base64), (c) => c.charCodeAt(0));
  const unpacked = new Blob([packed]).stream().pipeThrough(new DecompressionStream("gzip"));
  const source = await new Response(unpacked).text();
  return URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
}

function labelColormap(colours) {
  // NiiVue label LUT over the label values of the case's own convention; background transparent.
  const cmap = { R: [0], G: [0], B: [0], A: [0], I: [0], labels: ["background"] };
  for (const c of colours) {
    cmap.R.push(c.rgb[0]); cmap.G.push(c.rgb[1]); cmap.B.push(c.rgb[2]); cmap.A.push(255);
    cmap.I.push(c.value); cmap.labels.push(c.name);
  }
  return cmap;
}

const state = {
  modality: "flair" in config.volumes.modalities ? "flair" : Object.keys(config.volumes.modalities)[0],
  source: config.volumes.sources.length ? 0 : -1,
  showLabel: true,
  labelOpacity: 0.5,
  uncertainty: "entropy", // entropy (1 - confidence) | mutual_information | off
  uncertaintyOpacity: 0.7,
  showTruth: false,
};

let nv, NVImage;
const loaded = new Map(); // volume name -> Promise<NVImage>, each file loaded once

function load(ref, prepare) {
  if (!loaded.has(ref.name)) {
    loaded.set(ref.name, NVImage.loadFromUrl({ url: volumeUrl(ref), name: ref.name }).then((image) => {
      prepare?.(image);
      return image;
    }));
  }
  return loaded.get(ref.name);
}

function asLabels(image) {
  image.setColormapLabel(labelColormap(config.label_colours));
  image.colorbarVisible = false; // the page's legend names the colours
}

const asImage = (image) => { image.colorbarVisible = false; };

function asEntropy(image) {
  // confidence.nii.gz holds c = 1 - H / log C; the heat map shows the normalised entropy H / log C.
  for (let i = 0; i < image.img.length; i++) image.img[i] = 1 - image.img[i];
  image.colormap = "warm";
  image.cal_min = config.uncertainty_floor; // 1 - τ of stage 1: voxels below it are unlearned there
  image.cal_max = 1.0;
}

function asHeat(image) {
  image.colormap = "warm";
  image.cal_min = 0.02;
  image.cal_max = Math.max(0.1, image.robust_max ?? 0.1);
}

let centred = false;

function centreOnLabels(images) {
  // Put the crosshair on the centre of the first label map's labelled voxels (the tumour).
  const labels = images.find((image) => image.colormapLabel);
  if (!labels) return false;
  const [, nx, ny] = labels.hdr.dims;
  const sum = [0, 0, 0];
  let count = 0;
  labels.img.forEach((value, i) => {
    if (value === 0) return;
    sum[0] += i % nx;
    sum[1] += Math.floor(i / nx) % ny;
    sum[2] += Math.floor(i / (nx * ny));
    count++;
  });
  if (count) {
    const voxel = sum.map((s) => s / count);
    const affine = labels.hdr.affine; // voxel (file order) -> world mm
    const mm = [0, 1, 2].map((r) => affine[r][0] * voxel[0] + affine[r][1] * voxel[1] + affine[r][2] * voxel[2] + affine[r][3]);
    nv.scene.crosshairPos = nv.mm2frac(mm);
  }
  return true;
}

let drawing = null;
let drawAgain = false;

function draw() {
  // One redraw at a time; changes made meanwhile (a dragged slider) are drawn once more after it.
  if (drawing) {
    drawAgain = true;
    return drawing;
  }
  drawing = (async () => {
    try {
      do {
        drawAgain = false;
        await drawLayers();
      } while (drawAgain);
    } catch (error) {
      status.textContent = `viewer error: ${error}`;
      status.dataset.error = String(error);
    } finally {
      drawing = null;
    }
  })();
  return drawing;
}

async function drawLayers() {
  delete status.dataset.ready;
  status.textContent = "loading volumes …";
  const modalities = config.volumes.modalities;
  const source = state.source >= 0 ? config.volumes.sources[state.source] : null;
  const layers = [[await load(modalities[state.modality], asImage), 1.0]];
  if (source && source.confidence && byId("uncertainty") && state.uncertainty !== "off") {
    const heat = state.uncertainty === "entropy"
      ? await load(source.confidence, asEntropy) : await load(source.mutual_information, asHeat);
    layers.push([heat, state.uncertaintyOpacity]);
  }
  if (source && state.showLabel) layers.push([await load(source.label, asLabels), state.labelOpacity]);
  if (config.volumes.ground_truth && state.showTruth) {
    layers.push([await load(config.volumes.ground_truth, asLabels), state.labelOpacity]);
  }
  for (const image of [...nv.volumes]) nv.removeVolume(image);
  for (const [image, opacity] of layers) {
    image.opacity = opacity;
    nv.addVolume(image);
  }
  if (!centred) centred = centreOnLabels(layers.slice(1).map(([image]) => image));
  nv.updateGLVolume();
  status.textContent = `ready: ${layers.map(([image]) => image.name).join(", ")}`;
  status.dataset.ready = "1";
}

async function decide(decision) {
  if (!config.decide_url) return;
  const response = await fetch(config.decide_url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ decision, note: byId("note")?.value ?? "" }),
  });
  const answer = await response.json();
  const shown = byId("decision");
  if (response.ok) {
    shown.textContent = answer.decision;
    shown.className = `decision-${answer.decision}`;
  } else {
    shown.textContent = `not saved: ${answer.error}`;
  }
}

function go(url) {
  if (url) window.location.href = url;
}

function bindControls() {
  // A control the page does not have (no labelling, no ground truth, not in the pool) is skipped.
  const on = (id, event, handler) => byId(id)?.addEventListener(event, (e) => handler(e.target));
  const modality = byId("modality");
  const source = byId("source");
  const truth = byId("show-truth");
  modality.value = state.modality;
  on("modality", "change", (el) => { state.modality = el.value; draw(); });
  on("source", "change", (el) => { state.source = Number(el.value); draw(); });
  on("show-label", "change", (el) => { state.showLabel = el.checked; draw(); });
  on("label-opacity", "input", (el) => { state.labelOpacity = Number(el.value); draw(); });
  on("uncertainty", "change", (el) => { state.uncertainty = el.value; draw(); });
  on("uncertainty-opacity", "input", (el) => { state.uncertaintyOpacity = Number(el.value); draw(); });
  on("show-truth", "change", (el) => { state.showTruth = el.checked; draw(); });
  on("view", "change", (el) => nv.setSliceType(Number(el.value)));
  for (const button of document.querySelectorAll("button[data-decision]")) {
    button.onclick = () => decide(button.dataset.decision);
  }
  const modalityNames = Object.keys(config.volumes.modalities);
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, textarea, select") || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    if (key === "n") go(config.next_url);
    else if (key === "p") go(config.previous_url);
    else if (key === "a") decide("accept");
    else if (key === "r") decide("reject");
    else if (key === "u") decide("undecided");
    else if (key === "t" && source) {
      state.source = (state.source + 1) % config.volumes.sources.length;
      source.value = String(state.source);
      draw();
    } else if (key === "g" && truth) { truth.checked = !truth.checked; state.showTruth = truth.checked; draw(); }
    else if ("1234".includes(key) && modalityNames[Number(key) - 1]) {
      state.modality = modalityNames[Number(key) - 1];
      modality.value = state.modality;
      draw();
    } else return;
    event.preventDefault();
  });
}

try {
  const niivue = await import(await moduleUrl(config.niivue));
  NVImage = niivue.NVImage;
  nv = new niivue.Niivue({
    backColor: [0, 0, 0, 1],
    show3Dcrosshair: true,
    crosshairColor: [1, 0.2, 0.2, 0.5],
    multiplanarShowRender: niivue.SHOW_RENDER.ALWAYS,
    isColorbar: true,
    dragAndDropEnabled: false,
  });
  await nv.attachTo("viewer");
  nv.setSliceType(niivue.SLICE_TYPE.MULTIPLANAR);
  bindControls();
  await draw();
} catch (error) {
  status.textContent = `viewer error: ${error}`;
  status.dataset.error = String(error);
  throw error;
}
