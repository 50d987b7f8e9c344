"""Stage 2: item content -> vector."""

import numpy as np
import pytest

from tiger_jax import content
from tiger_jax.data import training_sequences


def test_text_encoder_places_similar_titles_closer(tmp_path):
  titles = ["Maybelline Color Sensational matte red lipstick",
            "L'Oreal Colour Riche matte lipstick, classic red",
            "Coleman 4-person dome tent for camping",
            "Garden hose nozzle with 8 spray patterns"]
  v = content.encode_texts(titles, cache_dir=str(tmp_path))
  assert v.shape == (4, 384)
  np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
  sim = v @ v.T
  assert sim[0, 1] > sim[0, 2] + 0.2 and sim[0, 1] > sim[0, 3] + 0.2
  # Second call is served from the on-disk cache: no encoder is loaded.
  class Boom:
    def encode(self, *a, **k):
      raise AssertionError("cache miss")
  np.testing.assert_array_equal(content.encode_texts(titles, cache_dir=str(tmp_path), encoder=Boom()), v)


def test_attribute_vectors_identical_sets_identical_vectors():
  attrs = [[1, 2, 3], [3, 2, 1], [1, 4], [5], [2, 5, 6]] * 5 + [[i, i + 1] for i in range(7, 80)]
  v = content.attribute_vectors(attrs, dim=16)
  assert v.shape == (len(attrs), 16)
  np.testing.assert_allclose(v[0], v[1], atol=1e-6)
  assert np.linalg.norm(v[0] - v[2]) > 1e-3


def test_collaborative_vectors_use_training_histories_only(tiny_dataset):
  # Item 4 appears only as user 0's test target and in user 2's history.
  seqs = [np.array([0, 1, 2, 3, 4]), np.array([0, 1, 2, 5, 3]), np.array([1, 2, 3, 0, 5])]
  tiny_dataset.sequences = seqs
  v = content.collaborative_vectors(training_sequences(tiny_dataset), 6, dim=3)
  assert np.all(v[4] == 0) and np.all(v[5] == 0)  # only ever validation/test items
  assert np.linalg.norm(v[1]) > 0


def test_item_vectors_text_and_attributes_side_by_side(tiny_dataset):
  both, info = content.item_vectors(tiny_dataset, "text+attributes", attribute_dim=8)
  text, _ = content.item_vectors(tiny_dataset, "text")
  attrs, _ = content.item_vectors(tiny_dataset, "attributes", attribute_dim=8)
  np.testing.assert_allclose(both, np.concatenate([text, attrs], 1), atol=1e-6)
  assert info["blocks"] == [["text", text.shape[1], 1.0], ["attributes", 8, 1.0]]
  assert info["dim"] == text.shape[1] + 8 and info["text_model"] == content.DEFAULT_TEXT_MODEL
  with pytest.raises(ValueError, match="unknown content source"):
    content.item_vectors(tiny_dataset, "title")
