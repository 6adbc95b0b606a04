import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from app import word_counts  # noqa: E402


class WordCountTest(unittest.TestCase):
    def test_counts_most_common_first(self):
        self.assertEqual(word_counts("b a b"), [("b", 2), ("a", 1)])

    def test_ignores_case_and_punctuation(self):
        self.assertEqual(word_counts("Fence, fence!"), [("fence", 2)])

    def test_empty(self):
        self.assertEqual(word_counts(""), [])


if __name__ == "__main__":
    unittest.main()
