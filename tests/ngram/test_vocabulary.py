"""Tokenization, vocabulary, encoding, text files and the Penn Treebank loader."""

from __future__ import annotations

import pytest
import torch

from pyro_ar.data.penn_treebank import load_penn_treebank
from pyro_ar.ngram import Tokenizer, UnknownTokenError, Vocabulary, read_sentences


def test_tokenizer():
    assert Tokenizer()("  a  waste\tof time \n") == ["a", "waste", "of", "time"]
    punctuation = Tokenizer(r"\w+|[^\w\s]", lowercase=True)
    assert punctuation("What a waste, truly!") == ["what", "a", "waste", ",", "truly", "!"]
    with pytest.raises(TypeError, match="string"):
        Tokenizer()(["a"])


def test_vocabulary_ids_min_count_and_unknown():
    sentences = [["b", "a", "b"], ["c", "b", "a"], ["d"]]
    vocabulary = Vocabulary.build(sentences, min_count=2)
    assert vocabulary.itos == ["<unk>", "<s>", "</s>", "b", "a"]  # by count, then name
    assert vocabulary.num_predictable == 4
    assert vocabulary.encode(["a", "zebra"]).tolist() == [4, 0]
    assert vocabulary.encode(["a"], add_end=True).tolist() == [4, 2]
    assert vocabulary.decode(torch.tensor([3, 4, 2, 2])) == ["b", "a"]
    assert vocabulary.decode([3, 2, 4], strip_end=False) == ["b", "</s>", "a"]
    ids, lengths = vocabulary.encode_batch([["a"], ["b", "b", "c"]])
    assert ids.tolist() == [[4, 2, 2, 2], [3, 3, 0, 2]] and lengths.tolist() == [2, 4]
    flat, offsets = vocabulary.encode_corpus([["a", "b"], [], ["c"]])
    assert flat.tolist() == [1, 4, 3, 2, 1, 2, 1, 0, 2] and offsets.tolist() == [0, 4, 6, 9]


def test_vocabulary_errors():
    closed = Vocabulary(["a", "b"], unknown_token=None)
    with pytest.raises(UnknownTokenError, match="unknown token 'c'"):
        closed.encode(["a", "c"])
    with pytest.raises(UnknownTokenError, match="unknown token 'c'"):
        closed.encode_corpus([["c"]])
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary.build([["a"]], min_count=0)
    with pytest.raises(ValueError, match="empty corpus"):
        Vocabulary.build([])
    with pytest.raises(ValueError, match="no unknown token"):
        Vocabulary.build([["a", "a", "b"]], min_count=2, unknown_token=None)
    with pytest.raises(ValueError, match="context symbol"):
        Vocabulary(["a"]).encode(["<s>", "a"])
    with pytest.raises(IndexError, match="out of range"):
        Vocabulary(["a"]).decode([7])
    with pytest.raises(TypeError, match="list of tokens"):
        Vocabulary(["a"]).encode("a")


def test_read_sentences_from_file_and_list(tmp_path):
    path = tmp_path / "reviews.txt"
    path.write_text("a waste of time\n\nwhat a great movie\n", encoding="utf-8")
    assert read_sentences(path) == [["a", "waste", "of", "time"], ["what", "a", "great", "movie"]]
    assert read_sentences(str(path), skip_empty=False)[1] == []
    assert read_sentences(["x y", "z"]) == [["x", "y"], ["z"]]
    with pytest.raises(FileNotFoundError, match="list of lines"):
        read_sentences(tmp_path / "missing.txt")


def test_penn_treebank(penn_treebank, tmp_path):
    train, valid, test = (penn_treebank[s] for s in ("train", "valid", "test"))
    assert (len(train), len(valid), len(test)) == (42068, 3370, 3761)
    assert sum(len(s) for s in train) == 887521  # + 42068 <eos> = 929589 tokens
    vocabulary = Vocabulary.build(train)
    assert len(vocabulary) == 10001  # PTB's 10k words (with <unk> and <eos>) + <s>
    (tmp_path / "ptb.valid.txt").write_text("\n".join(" ".join(s) for s in valid) + "\n")
    assert load_penn_treebank("valid", data_dir=tmp_path) == valid
    with pytest.raises(ValueError, match="unknown split"):
        load_penn_treebank("dev")


@pytest.mark.parametrize("min_count", [1, 2])
@pytest.mark.parametrize("special_tokens", ["error", "skip", "unknown"])
def test_build_and_encode_is_build_then_encode(min_count, special_tokens):
    sentences = [["b", "a", "b"], [], ["c", "b", "a", "d"], ["a"], ["z", "<unk>", "a"]]
    if special_tokens == "skip":
        sentences.append(["</s>", "b", "<s>"])
    try:
        expected_vocabulary = Vocabulary.build(sentences, min_count=min_count)
        expected = expected_vocabulary.encode_corpus(sentences, special_tokens=special_tokens)
    except ValueError as error:
        with pytest.raises(type(error), match="special token"):
            Vocabulary.build_and_encode(sentences, min_count, special_tokens)
        return
    vocabulary, flat, offsets = Vocabulary.build_and_encode(sentences, min_count, special_tokens)
    assert vocabulary == expected_vocabulary
    assert flat.tolist() == expected[0].tolist() and offsets.tolist() == expected[1].tolist()
    with pytest.raises(ValueError, match="empty corpus"):
        Vocabulary.build_and_encode([[]])
