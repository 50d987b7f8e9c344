"""Constrained beam search, the trie, and the retrieval metrics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import TINY_MODEL
from tiger_jax import baselines, decoding, metrics, network
from tiger_jax.models import EncoderDecoderModel, unbox
from tiger_jax.network import followers
from tiger_jax.network.followers import FollowerConfig
from tiger_jax.network.transition import TransitionConfig
from tiger_jax.semantic_ids import make_unique
from tiger_jax.tokens import TokenLayout


def _setup(num_items=20, seed=0, **config):
  rng = np.random.default_rng(seed)
  ids = make_unique(np.unique(rng.integers(0, 3, (num_items, 3)), axis=0))
  layout = TokenLayout.for_ids(ids, codebook_size=3, num_user_buckets=5)
  cfg = network.T5Config(vocab_size=layout.vocab_size, **{**TINY_MODEL, **config})
  memory = None
  if cfg.followers:  # followers from random sequences, a random bias table
    sequences = [rng.integers(0, len(ids), 12) for _ in range(30)]
    memory = followers.memory_variables(followers.follower_memory(
        layout.item_tokens(ids), *baselines.followers(sequences, len(ids), cfg.followers.count)))
  model = EncoderDecoderModel(network.Transformer(cfg), memory=memory)
  params = unbox(model.init(jax.random.PRNGKey(seed), 9, 4))["params"]
  for k, name in enumerate(n for n in params["decoder"] if n.startswith("follower_")):
    params["decoder"][name] = 2 * jax.random.normal(jax.random.PRNGKey(seed + k),
                                                    params["decoder"][name].shape)
  return ids, layout, model, params


def _search(model, params, layout, x, beams, trie, block_softmax=True, exclude=None):
  """The search under jit, as the Retriever runs it (one compile instead of many eager ops)."""
  def search(params, x, exclude):
    enc = model.encode(params, x)
    cache = model.init_cache(params, enc, x)
    step = lambda tok, c, position, block: model.decode_step(params, c, enc, x, tok, position,
                                                             block)
    return decoding.beam_search(step, cache, x.shape[0], beams, layout.level_offsets,
                                layout.level_sizes, trie,
                                block_softmax=block_softmax, exclude=exclude)
  return jax.jit(search)(params, x, exclude)


def test_trie_children_by_hand():
  ids = np.array([[0, 1, 0], [0, 1, 1], [2, 0, 0]])
  trie = decoding.Trie.build(ids)
  mask, _ = trie.children(0, jnp.array([0]), 3)
  np.testing.assert_array_equal(mask[0], [True, False, True])
  node_for_0 = trie.child_node[0][0]  # edge (root, 0)
  mask, _ = trie.children(1, jnp.array([node_for_0]), 3)
  np.testing.assert_array_equal(mask[0], [False, True, False])
  with pytest.raises(ValueError, match="not unique"):
    decoding.Trie.build(np.array([[1, 1], [1, 1]]))


# transition: the decoder's hashed (last item, prefix) embedding, whose chain states the
# search reorders with their beams; followers: the followers each beam still matches,
# reordered likewise (the inputs' last items are real items, so that they have followers);
# copy: the copy mixture, over each level's block as the search scores it.
F = FollowerConfig
@pytest.mark.parametrize("block_softmax,config", [
    (True, {}), (False, {}), (True, dict(transition=TransitionConfig(buckets=256))),
    (True, dict(followers=F(count=6))), (False, dict(followers=F(count=6))),
    (True, dict(followers=F(count=6, share_buckets=4))),
    (True, dict(followers=F(count=6, sources=2))),
    (True, dict(followers=F(count=6, sources=2, copy=True))),
    (False, dict(followers=F(count=6, copy=True))),
    (True, dict(followers=F(count=6, sources=2, copy=True, copy_features=True)))])
def test_beam_covering_all_items_finds_the_exact_top_k(block_softmax, config):
  ids, layout, model, params = _setup(**config)
  x = jax.random.randint(jax.random.PRNGKey(1), (3, 9), 2, layout.vocab_size)
  if "followers" in config:
    x = x.at[:, 1:].set(jnp.asarray(layout.item_tokens(ids[[[0, 1], [2, 3], [4, 4]]])).reshape(3, 8))
  beams = len(ids) + 3
  codes, scores, items = _search(model, params, layout, x, beams, decoding.Trie.build(ids),
                                 block_softmax)
  tokens = jnp.asarray(layout.item_tokens(ids))
  blocks = list(zip(layout.level_offsets, layout.level_sizes)) if block_softmax else None
  every = np.asarray(model.score(params, jnp.repeat(x, len(ids), 0), jnp.tile(tokens, (3, 1)),
                                 blocks)).reshape(3, len(ids))  # each input with each item
  for b in range(3):
    brute = every[b]
    order = np.argsort(-brute, kind="stable")
    np.testing.assert_array_equal(np.asarray(items[b, :len(ids)]), order)
    np.testing.assert_allclose(np.asarray(scores[b, :len(ids)]), brute[order], atol=1e-4)
    assert (np.asarray(items[b, len(ids):]) == -1).all()  # more beams than items
    np.testing.assert_array_equal(np.asarray(codes[b, :len(ids)]), ids[order])


@pytest.mark.parametrize("constrained", [True, False])
def test_excluded_ids_leave_the_beams_to_the_next_best(constrained):
  """Excluding IDs (a user's history) gives the search's own list with them taken out, and
  their beams go to the next best."""
  ids, layout, model, params = _setup()
  x = jax.random.randint(jax.random.PRNGKey(1), (3, 9), 2, layout.vocab_size)
  trie = decoding.Trie.build(ids) if constrained else None
  beams = len(ids) + 3 if constrained else 8  # constrained: every item fits in the beams
  full = [np.asarray(a) for a in _search(model, params, layout, x, beams, trie)]
  ranks = [[0, 2, 5], [1], []]  # exclude the IDs the plain search ranked here
  exclude = np.full((3, 3, ids.shape[1]), -1, np.int32)  # rows of -1: padding
  for b, r in enumerate(ranks):
    exclude[b, :len(r)] = full[0][b, r]
  got = [np.asarray(a) for a in _search(model, params, layout, x, beams, trie,
                                        exclude=jnp.asarray(exclude))]
  for b, r in enumerate(ranks):
    keep = [i for i in range(beams) if i not in r and full[1][b, i] > -1e8]
    np.testing.assert_array_equal(got[0][b, :len(keep)], full[0][b, keep])
    np.testing.assert_allclose(got[1][b, :len(keep)], full[1][b, keep], atol=1e-4)
    real = got[1][b] > -1e8
    assert not any(c in exclude[b].tolist() for c in got[0][b, real].tolist())
    if constrained:  # every other item, then nothing
      assert real.sum() == len(ids) - len(r) and (got[2][b, ~real] == -1).all()
    else:  # the freed beams hold the next-best of the last level's beams x codes
      assert real.sum() == min(beams, beams * layout.level_sizes[-1] - len(r))


def test_retriever_reads_the_history_from_the_inputs_and_excludes_it():
  from tiger_jax import retrieval
  ids, layout, model, params = _setup(num_items=60, seed=1)
  user = layout.user_tokens(["u"])[0]
  histories = [[3, 7, 11], [5], [0, 1, 2, 4, 6, 8]]
  x = np.zeros((3, 1 + 6 * ids.shape[1]), np.int32)
  for b, h in enumerate(histories):
    x[b, 0], x[b, 1:1 + len(h) * ids.shape[1]] = user, layout.item_tokens(ids[h]).ravel()
  codes = np.asarray(retrieval.history_codes(jnp.asarray(x), layout))
  np.testing.assert_array_equal(codes[2], ids[histories[2]])
  np.testing.assert_array_equal(codes[1, 1:], -1)  # padding
  plain = retrieval.Retriever(model, layout, ids, 8)(params, x)[0]
  items = retrieval.Retriever(model, layout, ids, 8, exclude_history=True)(params, x)[0]
  assert any(set(r) & set(h) for r, h in zip(plain.tolist(), histories))  # what it removes
  for r, p, h in zip(items.tolist(), plain.tolist(), histories):
    assert not set(r) & set(h)
    assert r[:8 - len(set(p) & set(h))] == [i for i in p if i not in h]  # then the next best


def test_expanded_first_position_gives_the_same_search():
  """A cache expanded to one copy per beam after the first step (what a step_fn that cannot
  share entries needs) yields the search the shared position-0 entries give."""
  ids, layout, model, params = _setup(num_items=60, seed=1)
  x = jax.random.randint(jax.random.PRNGKey(3), (4, 9), 2, layout.vocab_size)
  trie, beams = decoding.Trie.build(ids), 6
  shared = _search(model, params, layout, x, beams, trie)
  enc = model.encode(params, x)
  step = lambda tok, c, position, block: model.decode_step(params, c, enc, x, tok, position, block)
  copied = []

  def expand(cache):
    def repeat(path, v):
      if "cached_cross" in str(path[-1]):
        return v
      copied.append(v.shape[0])
      return jnp.repeat(v, beams, 0)
    return jax.tree_util.tree_map_with_path(repeat, cache)

  expanded = jax.jit(lambda cache: decoding.beam_search(  # (jit: one compile, not one per op)
      step, cache, 4, beams, layout.level_offsets, layout.level_sizes, trie, expand))(
          model.init_cache(params, enc, x))
  assert copied == [4] * 2 * model.config.num_decoder_layers  # position 0's keys and values
  np.testing.assert_array_equal(np.asarray(expanded[2]), np.asarray(shared[2]))
  np.testing.assert_allclose(np.asarray(expanded[1]), np.asarray(shared[1]), atol=1e-5)


def test_constrained_search_returns_only_real_items():
  ids, layout, model, params = _setup(num_items=60, seed=1)
  x = jax.random.randint(jax.random.PRNGKey(3), (8, 9), 2, layout.vocab_size)
  _, _, items = _search(model, params, layout, x, 5, decoding.Trie.build(ids))
  items = np.asarray(items)
  assert (items >= 0).all() and (items < len(ids)).all()
  assert all(len(set(r)) == len(r) for r in items.tolist())  # distinct items per user


def test_unconstrained_mode_counts_invalid_ids():
  ids = np.array([[0, 0], [1, 1]])
  layout = TokenLayout((2, 2), num_user_buckets=1)
  # A fixed next-token distribution: level 1 prefers code 0, level 2 prefers code 1,
  # so the best beams are (0,1) and (1,1)... of which only (1,1) is an item.
  logits = np.full(layout.vocab_size, -10.0)
  logits[layout.level_offsets[0] + 0], logits[layout.level_offsets[0] + 1] = 0.0, -0.1
  logits[layout.level_offsets[1] + 0], logits[layout.level_offsets[1] + 1] = -1.0, 0.0
  step = lambda tok, cache, position, block: (
      jnp.tile(jnp.asarray(logits, jnp.float32), (tok.shape[0], 1)), cache)
  search = lambda trie: decoding.beam_search(step, {}, 1, 4, layout.level_offsets, layout.level_sizes,
                                             trie, lambda c: c, block_softmax=False)
  codes, _, _ = search(None)
  np.testing.assert_array_equal(np.asarray(codes[0]), [[0, 1], [1, 1], [0, 0], [1, 0]])
  items = decoding.lookup_items(np.asarray(codes), ids)
  np.testing.assert_array_equal(items[0], [-1, 1, 0, -1])
  assert metrics.invalid_rate(items, 2) == 0.5 and metrics.invalid_rate(items) == 0.5
  _, _, constrained = search(decoding.Trie.build(ids))
  # Only real items: (1,1) scores -0.1 + 0, (0,0) scores 0 - 1.
  np.testing.assert_array_equal(np.asarray(constrained[0]), [1, 0, -1, -1])


def test_metrics_match_hand_computed_values():
  ranked = np.array([[5, 1, 2, 3, 4, 6, 7, 8, 9, 10],
                     [1, 2, 3, 4, 5, 6, 9, 8, 7, 0],
                     [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])
  targets = np.array([5, 7, 11])  # ranks 0, 8, absent
  m = metrics.retrieval_metrics(ranked, targets)
  assert m["recall@5"] == pytest.approx(1 / 3) and m["recall@10"] == pytest.approx(2 / 3)
  assert m["ndcg@5"] == pytest.approx(1 / 3)
  assert m["ndcg@10"] == pytest.approx((1 + 1 / np.log2(10)) / 3)
  assert metrics.seqio_retrieval_metric(list(targets), list(ranked)) == m


def test_per_user_metrics_and_their_paired_difference_by_hand():
  ranked = np.array([[5, 1, 2], [1, 2, 7], [1, 2, 3], [9, 8, 4]])
  targets = np.array([5, 7, 11, 4])  # ranks 0, 2, absent, 2
  np.testing.assert_array_equal(metrics.user_recall(ranked, targets, 2), [1, 0, 0, 0])
  np.testing.assert_allclose(metrics.user_ndcg(ranked, targets, 3), [1, 0.5, 0, 0.5])
  assert metrics.ndcg_at_k(ranked, targets, 3) == pytest.approx(0.5)
  other = np.array([[1, 5, 2], [7, 1, 2], [11, 1, 2], [9, 8, 4]])  # ranks 1, 0, 0, 2
  a, b = metrics.user_ndcg(ranked, targets, 3), metrics.user_ndcg(other, targets, 3)
  d = metrics.paired_difference(a, b)
  # By hand: a - b = [1 - 1/log2(3), -0.5, -1, 0].
  diff = np.array([1 - 1 / np.log2(3), -0.5, -1.0, 0.0])
  se = np.sqrt(((diff - diff.mean()) ** 2).sum() / 3) / 2
  assert d["a"] == pytest.approx(0.5) and d["b"] == pytest.approx(b.mean())
  assert d["difference"] == pytest.approx(diff.mean()) and d["se"] == pytest.approx(se)
  assert (d["low"], d["high"]) == pytest.approx((diff.mean() - 1.96 * se, diff.mean() + 1.96 * se))
  assert d["z"] == pytest.approx(diff.mean() / se)
  # Pairing: a model against itself shifted by a constant has no spread, whatever the users'.
  same = metrics.paired_difference(a + 0.5, a)  # exact in binary: no rounding spread
  assert same["difference"] == 0.5 and same["se"] == 0.0
  assert same["z"] == np.inf and metrics.paired_difference(a, a)["z"] == 0.0
  with pytest.raises(ValueError, match="same n"):
    metrics.paired_difference(a, b[:3])


def test_hits_keep_every_per_user_metric_after_the_lists_are_gone():
  rng = np.random.default_rng(0)
  targets = rng.integers(0, 30, 500)
  ranked = np.stack([rng.permutation(30)[:20] for _ in targets])  # about 2 users in 3 hit
  hits = metrics.encode_hits(metrics.hit_ranks(ranked, targets))
  pairs = [tuple(map(int, p.split(":"))) for p in hits.split()]
  assert 0 < len(pairs) < 500 and all(ranked[u, r] == targets[u] for u, r in pairs)
  ranks = metrics.decode_hits(hits, 500)
  for k in (1, 5, 10, 20):
    np.testing.assert_array_equal(metrics.recall_from_ranks(ranks, k),
                                  metrics.user_recall(ranked, targets, k))
    np.testing.assert_array_equal(metrics.ndcg_from_ranks(ranks, k),
                                  metrics.user_ndcg(ranked, targets, k))
  assert (metrics.decode_hits("", 4) == -1).all()
  with pytest.raises(ValueError, match="outside 0..3"):
    metrics.decode_hits("4:0", 4)


def test_without_history_drops_each_users_own_items_and_keeps_the_order():
  ranked = np.array([[4, 1, 7, 2, 9, 3],
                     [5, 6, 7, 8, 9, 0],
                     [2, -1, 3, 4, 5, 6]])
  histories = [np.array([1, 9]), np.array([0]), np.array([2, 3, 4, 5, 6])]
  out = metrics.without_history(ranked, histories, 4)
  # Row 3 keeps only what is neither history nor padding: -1 pads it to k.
  np.testing.assert_array_equal(out, [[4, 7, 2, 3], [5, 6, 7, 8], [-1, -1, -1, -1]])
  targets = np.array([3, 0, 6])  # hit at rank 3 only once history is out; never; never
  assert metrics.recall_at_k(ranked, targets, 4) == 0.0
  assert metrics.recall_at_k(out, targets, 4) == pytest.approx(1 / 3)
  # retrieval_metrics(histories=) scores the same lists without the history.
  assert metrics.retrieval_metrics(ranked, targets, (4,), histories) == \
      metrics.retrieval_metrics(out, targets, (4,))
  assert metrics.retrieval_metrics(ranked, targets, (4,))["recall@4"] == 0.0


def test_cold_start_cap_and_content_knn():
  from tiger_jax import baselines
  is_cold = np.zeros(10, bool)
  is_cold[[1, 2, 3]] = True
  ranked = np.array([[1, 2, 0, 3, 4, 5, -1, 6]])
  np.testing.assert_array_equal(metrics.cap_cold(ranked, is_cold, 4, 0.5), [[1, 2, 0, 4]])
  np.testing.assert_array_equal(metrics.cap_cold(ranked, is_cold, 4, 0.0), [[0, 4, 5, 6]])
  np.testing.assert_array_equal(metrics.cap_cold(ranked, is_cold, 4, 1.0), [[1, 2, 0, 3]])
  ids = np.array([[0, 0, 0], [0, 1, 0], [0, 1, 1], [2, 0, 0], [0, 0, 1], [5, 5, 0], [6, 6, 0],
                  [7, 7, 0], [0, 2, 0], [1, 0, 0]])
  # Cold items 1, 2 have prefix (0, 1) and 3 has (2, 0): no retrieved item shares two codes
  # with them; with one code, (0,) brings 1 and 2 in after the first item that has it.
  np.testing.assert_array_equal(metrics.add_cold_by_prefix(np.array([[0, 8, -1]]), ids, is_cold, 2),
                                [[0, 8, -1]])
  expanded = metrics.add_cold_by_prefix(np.array([[8, 0, 2, -1], [4, -1, -1, -1]]), ids, is_cold, 1)
  np.testing.assert_array_equal(expanded, [[8, 1, 2, 0], [4, 1, 2, -1]])
  # What the prefix can reach: (0,) is also warm item 0's first code, (2,) no warm item's.
  assert metrics.cold_prefix_share(ids, is_cold, 1) == 2 / 3
  assert metrics.cold_prefix_share(ids, is_cold, 2) == 0.0
  vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], np.float32)
  np.testing.assert_array_equal(baselines.content_knn(vectors, [np.array([3, 0])], k=3), [[1, 2, 3]])


def test_content_knn_queries_candidates_and_the_choice_on_validation():
  from tiger_jax import baselines
  # Items 0-2 point along x, y and the diagonal; 3-5 are near-copies of 0, 1 and 2.
  v = np.array([[1, 0], [0, 1], [1, 1], [1, 0.05], [0.05, 1], [1, 0.9]], np.float32)
  h = [np.array([0, 1])]
  last = baselines.content_knn(v, h, k=3, query="last")
  assert last[0, 0] == 4 and 1 not in last[0, :1]  # the last item (1) itself is excluded
  # The mean of x and y is the diagonal: its near-copy and itself come first; the history
  # items are excluded (they made the query).
  np.testing.assert_array_equal(baselines.content_knn(v, h, k=2, query="mean"), [[2, 5]])
  # Recency weights 0.7 ** age: (0.7, 1) leans to y, nearer item 4 than item 3.
  q = baselines.knn_queries(baselines.normalized(v), h, "recency")
  np.testing.assert_allclose(q[0], np.array([0.7, 1.0]) / np.hypot(0.7, 1.0), rtol=1e-6)
  rec = baselines.content_knn(v, h, k=4, query="recency")
  assert list(rec[0]).index(4) < list(rec[0]).index(3)
  # Candidates restrict the pool; -1 pads when they run out.
  np.testing.assert_array_equal(baselines.content_knn(v, h, k=3, query="last", candidates=[3, 5]),
                                [[5, 3, -1]])
  # The choice: targets near the diagonal favour the mean; targets like the last item, the last.
  hs = [np.array([0, 1])] * 3
  query, scores = baselines.choose_knn_query(v, hs, np.array([2, 2, 5]), k=1)
  assert query == "mean" and scores["mean"] == 2 / 3 > scores["last"] == 0.0
  query, _ = baselines.choose_knn_query(v, hs, np.array([4, 4, 4]), k=1)
  assert query == "last"
  with pytest.raises(ValueError, match="query"):
    baselines.content_knn(v, h, query="median")
