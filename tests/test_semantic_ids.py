"""Stage 3: RQ-VAE, its alternatives, and collision-free IDs."""

import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO
from tiger_jax import data as data_lib
from tiger_jax.semantic_ids import (METHODS, RQVAEConfig, SemanticIdConfig, compute_codes,
                                    make_unique, collision_stats)
from tiger_jax.semantic_ids.collisions import largest_groups
from tiger_jax.semantic_ids.report import make_report
from tiger_jax.semantic_ids import kmeans as kmeans_lib
from tiger_jax.semantic_ids import rqvae

SMALL = RQVAEConfig(hidden_dims=(32, 16), latent_dim=8, codebook_size=16, batch_size=64,
                    epochs=30, log_every=10, checkpoint_every=10, kmeans_iters=10)


def _clustered(n=200, d=12, clusters=10, seed=0):
  rng = np.random.default_rng(seed)
  centers = rng.standard_normal((clusters, d))
  return (centers[rng.integers(0, clusters, n)] + 0.05 * rng.standard_normal((n, d))).astype(np.float32)


def test_residuals_sum_to_quantized_latent():
  key = jax.random.PRNGKey(0)
  z = jax.random.normal(key, (50, 8))
  books = jax.random.normal(jax.random.PRNGKey(1), (3, 16, 8))
  codes, residuals, codewords = rqvae.residual_quantize(z, books)
  assert codes.shape == (50, 3)
  np.testing.assert_allclose(residuals[0], z)
  for l in range(2):
    np.testing.assert_allclose(residuals[l + 1], residuals[l] - codewords[l], atol=1e-6)
  final = residuals[2] - codewords[2]
  np.testing.assert_allclose(codewords.sum(0), z - final, atol=1e-5)
  for l in range(3):  # each level picks the nearest codeword to its residual
    d = ((residuals[l][:, None] - books[l][None]) ** 2).sum(-1)
    np.testing.assert_array_equal(codes[:, l], d.argmin(-1))


def test_straight_through_gradients_reach_the_encoder():
  x = _clustered(64)
  model, params, _ = rqvae.init(SMALL, x)

  def recon_only(p):
    _, _, losses = model.apply({"params": p}, x)
    return losses["reconstruction"]

  grads = jax.jit(jax.grad(recon_only))(params)
  enc = jax.tree.leaves(grads["encoder"])
  assert all(float(jnp.abs(g).sum()) > 0 for g in enc)  # through the argmin, by STE
  assert float(jnp.abs(grads["codebooks"]).sum()) == 0  # codebooks learn from their own loss

  def codebook_only(p):
    return model.apply({"params": p}, x)[2]["codebook"]

  assert float(jnp.abs(jax.jit(jax.grad(codebook_only))(params)["codebooks"]).sum()) > 0


def test_kmeans_places_centres_on_data():
  x = jnp.asarray(_clustered(300, d=6, clusters=5))
  centers = kmeans_lib.kmeans(jax.random.PRNGKey(0), x, 5, 20)
  assign = kmeans_lib.assign(x, centers)
  for c in range(5):  # every centre is the mean of its points, and tight around them
    members = x[assign == c]
    assert len(members) > 0
    np.testing.assert_allclose(centers[c], members.mean(0), atol=1e-4)
  assert float(jnp.mean(jnp.min(kmeans_lib.squared_distances(x, centers), -1))) < 0.05


def test_rqvae_init_codebooks_come_from_kmeans_on_latents():
  x = _clustered(64)
  model, params, _ = rqvae.init(SMALL, x)
  first = jnp.asarray(x)[jax.random.permutation(jax.random.split(jax.random.PRNGKey(0), 3)[1], 64)]
  z = model.apply({"params": params}, first, method=rqvae.RQVAE.encode)
  nearest = jnp.min(kmeans_lib.squared_distances(params["codebooks"][0], z), -1)
  spread = jnp.mean(jnp.sum((z - z.mean(0)) ** 2, -1))
  assert float(nearest.max()) < float(spread)  # level-1 codewords sit among the latents


def test_make_unique_any_input():
  for codes in (np.zeros((7, 3), np.int32), np.array([[1, 2, 3], [1, 2, 3], [0, 0, 0], [1, 2, 3]]),
                np.random.default_rng(0).integers(0, 2, (500, 3))):
    ids = make_unique(codes)
    assert ids.shape == (len(codes), 4)
    assert len(np.unique(ids, axis=0)) == len(codes)
    np.testing.assert_array_equal(ids[:, :3], codes)
  np.testing.assert_array_equal(make_unique(np.zeros((7, 3)))[:, 3], np.arange(7))
  np.testing.assert_array_equal(make_unique(np.array([[1, 2, 3], [1, 2, 3], [0, 0, 0], [1, 2, 3]]))[:, 3],
                                [0, 1, 0, 2])
  stats = collision_stats(np.array([[1, 2, 3], [1, 2, 3], [0, 0, 0], [1, 2, 3]]))
  assert stats == {"distinct_prefixes": 2, "items_in_collision": 0.75, "largest_group": 3}


def test_the_report_names_the_largest_collision_groups_and_their_text():
  codes = np.array([[5, 5, 5], [1, 2, 3], [0, 0, 0], [1, 2, 3], [0, 0, 0], [1, 2, 3], [9, 9, 9],
                    [7, 7, 7], [7, 7, 7]])
  # largest first; the two groups of two in the order of their first item (2 before 7)
  assert largest_groups(codes, k=5) == [[1, 3, 5], [2, 4], [7, 8]]
  assert largest_groups(codes, k=1) == [[1, 3, 5]]
  assert largest_groups(np.array([[0, 0, 0], [0, 0, 1]])) == []  # no collisions, no groups
  texts = [f"Lip Butter, shade {i}" for i in range(len(codes))]
  rep = make_report(codes, make_unique(codes), 16, {}, texts=texts)
  assert rep["largest_groups"][0] == {"size": 3, "items": [1, 3, 5], "texts": [
      "Lip Butter, shade 1", "Lip Butter, shade 3", "Lip Butter, shade 5"]}
  assert [g["size"] for g in rep["largest_groups"]] == [3, 2, 2]
  assert "texts" not in make_report(codes, make_unique(codes), 16, {})["largest_groups"][0]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_obeys_the_contract(method):
  x = _clustered(150)
  x[10:20] = x[5]  # ten items with identical content
  # The quantizer's own contract: no ceiling on groups (test_group_cap_* test the ceiling).
  cfg = SemanticIdConfig(method=method, codebook_size=16, rqvae=SMALL, kmeans_iters=10,
                         max_group=0)
  codes, _ = compute_codes(x, cfg)
  again, _ = compute_codes(x, cfg)
  assert codes.shape == (150, 3) and codes.dtype == np.int32
  assert codes.min() >= 0 and codes.max() < 16
  np.testing.assert_array_equal(codes, again)  # same seed -> identical IDs
  if method != "random":
    assert (codes[10:20] == codes[5]).all()  # same content -> same codes
    assert len(np.unique(codes, axis=0)) > 10  # yet it separates the clusters
  ids = make_unique(codes)
  assert len(np.unique(ids, axis=0)) == 150


@pytest.mark.parametrize("method", METHODS)
def test_all_identical_vectors_get_unique_ids(method):
  x = np.ones((40, 12), np.float32)
  codes, _ = compute_codes(x, SemanticIdConfig(method=method, codebook_size=16, rqvae=SMALL,
                                               kmeans_iters=5))
  ids = make_unique(codes)
  assert ids.shape == (40, 4) and len(np.unique(ids, axis=0)) == 40


def test_group_cap_moves_the_farthest_overflow_to_the_nearest_codeword_with_room():
  from tiger_jax.semantic_ids.group_cap import cap_groups
  book = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]], np.float32)
  # Six items on codes (2, 0); their residuals from codeword 0 grow with the item index.
  r = np.array([[0.1, 0], [0.2, 0], [0.3, 0], [0.9, 0], [0.8, 0.1], [0, 0.95]], np.float32)
  codes = np.array([[2, 0]] * 6 + [[2, 1], [2, 1], [3, 0]], np.int32)
  r = np.concatenate([r, [[1, 0], [1, 0], [0, 0]]]).astype(np.float32)
  out = cap_groups(codes, r, book, max_group=3)
  np.testing.assert_array_equal(out[:, 0], codes[:, 0])  # only the last level moves
  np.testing.assert_array_equal(out[:3], codes[:3])  # the three nearest codeword 0 stay
  # The overflow moves in order of distance to codeword 0 (items 4, 3, 5): item 4 fills (2, 1)
  # to 3; item 3, nearest codeword 1 too, finds it full and takes the next nearest with room,
  # codeword 2; item 5 is nearest codeword 2 anyway.
  assert out[4, 1] == 1 and out[3, 1] == 2 and out[5, 1] == 2
  np.testing.assert_array_equal(out[6:], codes[6:])
  assert np.unique(out, axis=0, return_counts=True)[1].max() <= 3
  np.testing.assert_array_equal(cap_groups(codes, r, book, max_group=6), codes)  # fits: as is
  with pytest.raises(ValueError, match="do not fit"):
    cap_groups(np.zeros((9, 2), np.int32), np.zeros((9, 2), np.float32), book, max_group=2)


@pytest.mark.parametrize("method", ["rqvae", "rq_kmeans"])
def test_group_cap_bounds_every_group_and_keeps_the_quantizers_other_codes(method):
  x = _clustered(150)
  x[10:30] = x[5]  # 21 items with identical content: one group of 21 without a ceiling
  base = SemanticIdConfig(method=method, codebook_size=16, rqvae=SMALL, kmeans_iters=10,
                          max_group=0)
  free, _ = compute_codes(x, base)
  codes, learned = compute_codes(x, dataclasses.replace(base, max_group=4))
  assert np.unique(free, axis=0, return_counts=True)[1].max() >= 21
  assert np.unique(codes, axis=0, return_counts=True)[1].max() <= 4
  moved = (codes != free).any(1)
  np.testing.assert_array_equal(codes[:, :2], free[:, :2])  # first levels untouched
  assert learned["group_cap"]["moved_items"] == moved.sum() >= 17
  assert learned["group_cap"]["largest_group_before"] >= 21
  with pytest.raises(ValueError, match="max_group"):
    SemanticIdConfig(max_group=-1)


@pytest.mark.parametrize("method", ["rqvae", "rq_kmeans"])
def test_fit_on_warm_learns_from_warm_items_and_assigns_the_rest(method):
  """LIGER's protocol: the quantizer and the standardization learn from the warm items only;
  the cold ones get codes of that model, as new items would."""
  from tiger_jax.semantic_ids import methods
  x = _clustered(150)
  fit = np.ones(150, bool)
  fit[::10] = False  # 15 cold items
  config = SemanticIdConfig(method=method, codebook_size=16, rqvae=SMALL, kmeans_iters=10,
                            max_group=0, fit_on="warm")
  codes, learned = compute_codes(x, config, fit=fit)
  warm_only, warm_learned = compute_codes(x[fit], config)
  np.testing.assert_array_equal(codes[fit], warm_only)  # the same fit as without cold items
  assert learned["fit_items"] == 135
  stats = warm_learned["standardization"]
  np.testing.assert_allclose(stats["mean"], x[fit].mean(0), atol=1e-5)
  np.testing.assert_array_equal(
      codes[~fit], methods.assign(methods.apply_standardization(x[~fit], stats), config, learned))
  with pytest.raises(ValueError, match="fit_on"):
    SemanticIdConfig(method="lsh", fit_on="warm")
  with pytest.raises(ValueError, match="fit_on"):
    SemanticIdConfig(fit_on="cold")


def test_dead_code_reset_revives_unused_codewords():
  x = _clustered(256, clusters=40)
  base = dataclasses.replace(SMALL, kmeans_init=False, epochs=5, codebook_size=64)
  used = {}
  for reset in (False, True):
    cfg = dataclasses.replace(base, reset_dead_codes=reset)
    model, params, _ = rqvae.train(cfg, x)
    codes, _ = rqvae.codes_in_batches(model, params, x)
    used[reset] = len(np.unique(codes[:, 0]))
  assert used[True] > used[False]


def test_clipping_bounds_adagrads_first_step_whatever_the_gradient():
  """Adagrad's first step moves every weight by up to the learning rate, whatever the
  gradient's size: on 2 threads that blew the encoder up in the first epoch of the text +
  collaborative vectors (docs/notes/2026-12-06-cold-start-gate-and-clipped-rqvae.md). Clipped
  to norm 1, the whole step stays within learning_rate / sqrt(0.1) (optax's initial
  accumulator)."""
  params = {"w": jnp.zeros((100, 100))}
  huge = {"w": jnp.full((100, 100), 50.0)}
  step = {}
  for clip in (0.0, 1.0):
    tx = rqvae.make_optimizer(dataclasses.replace(RQVAEConfig(), grad_clip=clip))
    updates, _ = tx.update(huge, tx.init(params), params)
    step[clip] = float(jnp.linalg.norm(updates["w"]))
  lr = RQVAEConfig().learning_rate
  assert step[0.0] > 0.99 * lr * 100  # every one of the 10,000 weights moves by ~lr
  assert step[1.0] <= lr / np.sqrt(0.1) + 1e-6


def test_rqvae_resumes_and_refuses_a_foreign_checkpoint(tmp_path):
  x = _clustered(128)
  cfg = dataclasses.replace(SMALL, epochs=20, checkpoint_every=10)
  _, full, _ = rqvae.train(cfg, x, str(tmp_path / "a"))
  rqvae.train(dataclasses.replace(cfg, epochs=10), x, str(tmp_path / "b"))  # "killed" at 10
  _, resumed, _ = rqvae.train(cfg, x, str(tmp_path / "b"))
  for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="another config"):
    rqvae.train(dataclasses.replace(cfg, latent_dim=4), x, str(tmp_path / "b"))


def test_cli_writes_ids_report_and_plot(tmp_path):
  from tiger_jax.data import synthetic
  from tiger_jax.data.prepare import prepare
  prepare("synthetic", str(tmp_path / "data"), content_source="attributes",
          synthetic_config=synthetic.SyntheticConfig(num_items=150, num_users=100))
  out = tmp_path / "sid"
  proc = subprocess.run(
      [sys.executable, "-m", "tiger_jax.semantic_ids", f"--data_dir={tmp_path / 'data'}",
       f"--out_dir={out}", "--gin.RQVAEConfig.epochs=5", "--gin.RQVAEConfig.batch_size=64",
       "--gin.SemanticIdConfig.collaborative_dim=8", "--seed=3"],
      capture_output=True, text=True, cwd=REPO)
  assert proc.returncode == 0, proc.stderr[-2000:]
  import json
  manifest = json.loads((out / "manifest.json").read_text())["config"]
  assert manifest["seed"] == 3 and manifest["rqvae"]["epochs"] == 5  # --seed, whatever the method
  ids = np.load(out / "semantic_ids.npy")
  n = data_lib.load(str(tmp_path / "data")).num_items
  assert ids.shape == (n, 4) and len(np.unique(ids, axis=0)) == n
  rep = json.loads((out / "report.json").read_text())
  assert rep["unique_ids"] and len(rep["levels"]) == 3
  assert rep["item_vectors"]["collaborative_dim"] == 8
  assert rep["fourth_token_range"] == rep["largest_group"] == ids[:, 3].max() + 1
  coherence = rep["semantic_coherence"]  # the synthetic catalog's leaf categories
  assert set(coherence) == {"prefix_1", "prefix_2", "prefix_3", "random_pairs"}
  assert coherence["prefix_1"]["same_category"] > coherence["random_pairs"]["same_category"]
  assert rep["reconstruction_mse"] > 0 and (out / "standardization.npz").exists()
  assert (out / "codeword_usage.png").read_bytes()[:4] == b"\x89PNG"
  assert os.path.exists(out / "params.npz") and os.path.exists(out / "manifest.json")


def test_ids_from_copies_a_runs_ids_whole_and_refuses_other_data(tiny_run, tmp_path):
  """--ids_from: the very IDs (same checksum) and what assigns new items with them; a run
  folder or its semantic_ids folder; IDs made for another item count are refused, and a
  refused copy leaves nothing behind."""
  from tiger_jax.data import synthetic
  from tiger_jax.data.prepare import prepare
  from tiger_jax.semantic_ids import pipeline
  data_dir, sid_dir = tiny_run
  run = tmp_path / "run"
  got = pipeline.copy_ids(sid_dir, str(run / "semantic_ids"), data_dir)
  want = pipeline.load_ids(sid_dir)
  np.testing.assert_array_equal(pipeline.load_ids(str(run / "semantic_ids")), want)
  assert got["sha1"] == pipeline.checksum(want) == json_report(sid_dir)["sha1"]
  assert got == pipeline.summary(sid_dir) and got["largest_group"] >= 1
  vectors = np.load(os.path.join(data_dir, "item_vectors.npy"))
  assert got["vectors_sha1"] == pipeline.checksum(vectors)  # the input the IDs were fit on
  _assert_assigned_back(pipeline.assign_codes(str(run / "semantic_ids"), vectors),
                        want[:, :-1], json_report(sid_dir))
  again = pipeline.copy_ids(str(run), str(tmp_path / "again"), data_dir)  # a run folder
  assert again["sha1"] == got["sha1"] and not (tmp_path / "again" / "checkpoints").exists()
  other = str(tmp_path / "other_data")
  prepare("synthetic", other, content_source="attributes",
          synthetic_config=synthetic.SyntheticConfig(num_items=60, num_users=40, seed=3))
  with pytest.raises(data_lib.DataError, match=r"--ids_from=.*: IDs for \d+ items, but the "
                                               r"dataset in .* has \d+; copy IDs made for"):
    pipeline.copy_ids(sid_dir, str(tmp_path / "refused"), other)
  with pytest.raises(data_lib.DataError, match="no finished Semantic IDs here"):
    pipeline.copy_ids(str(tmp_path), str(tmp_path / "refused"), data_dir)
  assert not list(tmp_path.glob("refused*"))


def _assert_assigned_back(assigned, saved, report):
  """A run's own vectors assigned again get their saved codes, except the items the group
  cap moved: those differ in the last level only, and there are as many as the report says."""
  differ = (assigned != saved).any(1)
  np.testing.assert_array_equal(assigned[:, :-1], saved[:, :-1])
  assert differ.sum() == report.get("group_cap", {}).get("moved_items", 0)


def json_report(sid_dir):
  import json
  return json.load(open(os.path.join(sid_dir, "report.json")))


def test_artifacts_on_a_remote_filesystem():
  """gs:// and other URLs go through tf.io.gfile; TF's in-memory ram:// stands in for GCS.
  (TFDS's own gs:// support is TFDS's: its path library does not know ram://.)"""
  from tiger_jax import content, io_utils
  from tiger_jax.data import synthetic
  from tiger_jax.semantic_ids import pipeline
  root = f"ram://tiger_remote_test_{os.getpid()}"
  made = synthetic.generate(synthetic.SyntheticConfig(num_items=80, num_users=40))
  data_lib.save(made, f"{root}/data", source="synthetic")
  io_utils.write_npy(f"{root}/data/item_vectors.npy",
                     content.item_vectors(made, "attributes", attribute_dim=8)[0])
  ds = data_lib.load(f"{root}/data")
  assert ds.num_users == 40 and ds.item_text == made.item_text
  rep = pipeline.run(f"{root}/data", f"{root}/sid",
                     SemanticIdConfig(method="rq_kmeans", codebook_size=8, kmeans_iters=5))
  ids = pipeline.load_ids(f"{root}/sid")
  assert ids.shape == (ds.num_items, 4) and rep["unique_ids"]
  assert "report.json" in io_utils.listdir(f"{root}/sid")


def test_standardization_is_saved_and_reapplied_at_assignment(tiny_run, tmp_path):
  from tiger_jax.semantic_ids import methods, pipeline
  data_dir, _ = tiny_run
  sid_dir = str(tmp_path / "sid")
  config = SemanticIdConfig(method="rqvae", codebook_size=16, rqvae=SMALL, collaborative_dim=4,
                            collaborative_weight=0.5)
  pipeline.run(data_dir, sid_dir, config)
  vectors, info = pipeline.load_item_vectors(data_dir, config)
  assert [b[1:] for b in info["blocks"]] == [[vectors.shape[1] - 4, 1.0], [4, 0.5]]
  stats = np.load(os.path.join(sid_dir, pipeline.STANDARDIZATION_FILE))
  np.testing.assert_allclose(stats["mean"], vectors.mean(0), atol=1e-6)
  x = methods.apply_standardization(vectors, dict(stats))
  live = x.std(0) > 0
  content_dims = vectors.shape[1] - 4
  # Each content dimension has unit variance; the collaborative block, scaled by
  # 0.5 * sqrt(content_dims / 4) per dimension, keeps a quarter of the content's total variance.
  np.testing.assert_allclose(x[:, :content_dims][:, live[:content_dims]].std(0), 1.0, rtol=1e-3)
  ratio = x[:, content_dims:].var(0).sum() / x[:, :content_dims].var(0).sum()
  np.testing.assert_allclose(ratio, 0.25 * live[content_dims:].sum() / 4
                             * content_dims / live[:content_dims].sum(), rtol=1e-3)
  ids = pipeline.load_ids(sid_dir)
  again = pipeline.assign_codes(sid_dir, vectors)  # reapplies the saved statistics
  _assert_assigned_back(again, ids[:, :3], json_report(sid_dir))
  assert pipeline.load_config(sid_dir) == config
  # The fixture's RQ-KMeans run assigns its own vectors back to its codes too.
  kmeans_dir = tiny_run[1]
  kmeans_vectors, _ = pipeline.load_item_vectors(data_dir, pipeline.load_config(kmeans_dir))
  _assert_assigned_back(pipeline.assign_codes(kmeans_dir, kmeans_vectors),
                        pipeline.load_ids(kmeans_dir)[:, :3], json_report(kmeans_dir))
  # Without them the saved model sees other inputs and gives other codes.
  raw = rqvae.codes_in_batches(
      rqvae.RQVAE(dataclasses.replace(SMALL, codebook_size=16), vectors.shape[1]),
      _params(sid_dir), vectors)[0]
  assert not np.array_equal(raw, ids[:, :3])


def _params(sid_dir):
  from flax import traverse_util
  flat = np.load(os.path.join(sid_dir, "params.npz"))
  return traverse_util.unflatten_dict({tuple(k.split("/")): flat[k] for k in flat.files})


def test_semantic_coherence_by_hand_and_by_sampling():
  from tiger_jax.semantic_ids import report
  codes = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [1, 0, 0]])
  cats = [["a"], ["a", "c"], ["b"], ["a"], []]  # item 4 has no category: left out
  coh = report.semantic_coherence(codes, cats)
  assert coh["prefix_1"] == {"pairs": 3, "same_category": pytest.approx(1 / 3)}
  assert coh["prefix_2"] == {"pairs": 1, "same_category": 1.0}
  assert coh["prefix_3"]["pairs"] == 0
  assert coh["random_pairs"]["same_category"] == pytest.approx(0.5, abs=0.01)  # 3 of 6 pairs
  # Past max_pairs the pairs are sampled uniformly: the share matches the exact one.
  rng = np.random.default_rng(0)
  codes = rng.integers(0, 3, (600, 1))
  cats = [[f"c{(c + (rng.random() < 0.3)) % 3}"] for c in codes[:, 0]]
  exact = report.semantic_coherence(codes, cats, max_pairs=10**6)["prefix_1"]
  sampled = report.semantic_coherence(codes, cats, max_pairs=20_000)["prefix_1"]
  assert exact["pairs"] == sampled["pairs"] == sum(n * (n - 1) // 2 for n in np.bincount(codes[:, 0]))
  assert sampled["same_category"] == pytest.approx(exact["same_category"], abs=0.015)
  assert exact["same_category"] > 0.4  # codes carry the categories here (random pairs: ~1/3)


def test_the_report_command_lists_a_runs_collision_groups_with_text(tiny_run, capsys):
  import json
  from tiger_jax.semantic_ids import pipeline, report
  data_dir, sid_dir = tiny_run
  codes = pipeline.load_ids(sid_dir)[:, :-1]
  report.main([f"--semantic_id_dir={sid_dir}", "--groups=2"])
  out = json.loads(capsys.readouterr().out)
  assert out["largest_group"] == collision_stats(codes)["largest_group"] > 1
  groups = out["largest_groups"]
  assert len(groups) == 2 and groups[0]["size"] == out["largest_group"]
  texts = data_lib.load(data_dir).item_text
  for g in groups:  # every listed item shares the group's codes; its text is its own
    assert (codes[g["items"]] == codes[g["items"][0]]).all()
    assert g["texts"] == [texts[i][:80] for i in g["items"]]
  with pytest.raises(SystemExit, match="no manifest.json"):
    report.main(["--semantic_id_dir=/nonexistent/semantic_ids"])
  with pytest.raises(SystemExit, match="--groups=0: must be at least 1"):
    report.main([f"--semantic_id_dir={sid_dir}", "--groups=0"])


def test_the_paper_schedule_by_name_is_the_presets_and_the_default_is_robust():
  """gin_configs/semantic_ids/paper.gin binds what PRESETS['paper'] holds; the default seeds
  k-means from all items and restarts dead codewords, the paper's from one batch, without."""
  import gin
  from tiger_jax import cli, configurables
  from tiger_jax.semantic_ids import PRESETS
  gin.clear_config()
  try:
    cli.parse_config(["gin_configs/semantic_ids/paper.gin"], [], ("SemanticIdConfig", "RQVAEConfig"))
    assert configurables.SemanticIdConfig(rqvae=configurables.RQVAEConfig()) == PRESETS["paper"]
  finally:
    gin.clear_config()
  default, paper = PRESETS["default"].rqvae, PRESETS["paper"].rqvae
  assert default == RQVAEConfig() and (default.kmeans_init_items, default.reset_dead_codes) == (0, True)
  assert (paper.kmeans_init_items, paper.reset_dead_codes) == (paper.batch_size, False)
  assert (default.grad_clip, paper.grad_clip) == (1.0, 0.0)
