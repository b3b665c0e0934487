#!/usr/bin/env python3
"""CPython's contextvars beside swift-locals' snapshot rows: what `copy_context()` and
`Context.run` cost with 10 and 100 variables set, and with 1,000 more variables alive that the
context never set. Run it where `python3` exists:

    python3 Benchmarks/contextvars-compare.py

It prints nanoseconds per operation (the best of several rounds of timeit).
"""
import contextvars
import sys
import timeit


def best(statement, number, rounds=7):
    return min(timeit.repeat(statement, number=number, repeat=rounds)) / number * 1e9


def measure(set_count, other_count):
    variables = [contextvars.ContextVar(f"v{i}") for i in range(set_count)]
    others = [contextvars.ContextVar(f"o{i}") for i in range(other_count)]

    def inside():
        for index, variable in enumerate(variables):
            variable.set(index)
        context = contextvars.copy_context()
        capture = best(contextvars.copy_context, 200_000)
        run = best(lambda: context.run(lambda: None), 200_000)
        first = variables[0]
        run_and_read = best(lambda: context.run(first.get), 200_000)
        return capture, run, run_and_read

    # A fresh context, so that earlier measurements' variables are not set in it.
    result = contextvars.Context().run(inside)
    del others
    return result


def main():
    print(f"CPython {sys.version.split()[0]} contextvars (ns per operation)")
    print(f"  {'variables set':<32}{'copy_context()':>16}{'Context.run':>14}{'run + one get':>16}")
    for label, set_count, other_count in [
        ("10", 10, 0),
        ("100", 100, 0),
        ("10, with 1,000 others alive", 10, 1000),
    ]:
        capture, run, run_and_read = measure(set_count, other_count)
        print(f"  {label:<32}{capture:>16.1f}{run:>14.1f}{run_and_read:>16.1f}")


if __name__ == "__main__":
    main()
