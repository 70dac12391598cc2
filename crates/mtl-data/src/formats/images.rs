//! Image formats: IDX, CIFAR binary batches, image folders, MultiMNIST.
