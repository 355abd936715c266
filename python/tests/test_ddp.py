"""Two processes under DistributedDataParallel (gloo, CPU): the fake-quant modules hold no
global state, each rank fits its own grids on the weights DDP keeps in sync, so after
training steps on different data the quantized weights are identical on both ranks."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from conftest import load_script


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank, world, port, results):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        import qgan.torch as qt
        train = load_script("train")
        torch.manual_seed(0)  # same initial weights on every rank
        G = train.make_generator(ngf=8)
        qt.quantize_weights(G, bits=2, method="em")
        model = nn.parallel.DistributedDataParallel(G)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        data = torch.Generator().manual_seed(100 + rank)  # each rank its own batch
        for _ in range(3):
            optimizer.zero_grad()
            z = torch.randn(4, train.NZ, 1, 1, generator=data)
            model(z).pow(2).mean().backward()
            optimizer.step()
        quantized = torch.cat([G.get_submodule(name).weight.detach().reshape(-1)
                               for name in ("deconv1", "deconv2", "deconv3", "deconv4")])
        gathered = [torch.empty_like(quantized) for _ in range(world)]
        dist.all_gather(gathered, quantized)
        start = torch.cat([p.detach().reshape(-1) for p in G.parameters()])
        results[rank] = (bool(torch.equal(gathered[0], gathered[1])), float(start.abs().sum()),
                         len(torch.unique(quantized)))
    finally:
        dist.destroy_process_group()


def test_ddp_two_ranks_keep_identical_quantized_weights():
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(worker, args=(2, free_port(), results), nprocs=2, join=True)
    assert results[0][0] and results[1][0]
    assert results[0][1] == results[1][1]  # the trained parameters agree too
    assert results[0][2] <= 4 * (8 * 4 + 8 * 2 + 8 + 1)  # 2-bit grids: at most 4 values per channel
