"""A tiny word-count app, the code an agent would work on."""

import sys
from collections import Counter


def word_counts(text):
    """Return the words of text with their counts, most common first."""
    words = [w.strip(".,;:!?\"'()").lower() for w in text.split()]
    return Counter(w for w in words if w).most_common()


def main(argv):
    text = open(argv[1]).read() if len(argv) > 1 else sys.stdin.read()
    for word, n in word_counts(text):
        print(f"{n:5} {word}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
