"""Tests for `bench.stats`: nearest-rank percentiles, medians and ratios."""

from __future__ import annotations

import random
import unittest

from bench.stats import median, percentile, ratio


class PercentileTest(unittest.TestCase):
    def test_nearest_rank_of_one_to_a_hundred_is_the_rank_itself(self) -> None:
        values = [float(value) for value in range(1, 101)]
        random.Random(12).shuffle(values)
        for fraction, rank in ((0.01, 1), (0.5, 50), (0.99, 99), (1.0, 100)):
            with self.subTest(fraction=fraction):
                self.assertEqual(percentile(values, fraction), rank)

    def test_rounds_the_rank_up_never_interpolates(self) -> None:
        # 0.5 * 3 = 1.5: the 2nd value; 0.99 * 3 = 2.97: the 3rd.
        self.assertEqual(percentile([30.0, 10.0, 20.0], 0.5), 20.0)
        self.assertEqual(percentile([30.0, 10.0, 20.0], 0.99), 30.0)

    def test_fraction_zero_and_a_single_value_give_the_smallest(self) -> None:
        self.assertEqual(percentile([3.0, 1.0, 2.0], 0.0), 1.0)
        self.assertEqual(percentile([7.5], 0.99), 7.5)

    def test_leaves_the_list_unsorted(self) -> None:
        values = [3.0, 1.0, 2.0]
        percentile(values, 0.5)
        self.assertEqual(values, [3.0, 1.0, 2.0])


class MedianTest(unittest.TestCase):
    def test_odd_and_even_counts(self) -> None:
        self.assertEqual(median([5.0, 1.0, 3.0]), 3.0)
        self.assertEqual(median([4.0, 1.0, 3.0, 2.0]), 2.5)

    def test_no_values_is_none(self) -> None:
        self.assertIsNone(median([]))


class RatioTest(unittest.TestCase):
    def test_divides(self) -> None:
        self.assertEqual(ratio(3.0, 4.0), 0.75)

    def test_missing_figure_or_zero_denominator_is_none(self) -> None:
        self.assertIsNone(ratio(None, 2.0))
        self.assertIsNone(ratio(2.0, None))
        self.assertIsNone(ratio(2.0, 0.0))

    def test_zero_numerator_is_zero(self) -> None:
        self.assertEqual(ratio(0.0, 2.0), 0.0)


if __name__ == "__main__":
    unittest.main()
