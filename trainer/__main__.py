"""`python -m trainer ...` (and `torchrun ... -m trainer run ...`): the `trainer` console script."""

from trainer.cli import main

if __name__ == "__main__":
    main()
