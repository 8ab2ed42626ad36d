"""Wild evaluation of `dropout-audit check` (issue #25): run by hand, never in CI.

The static `check` command runs on public repositories this project has never evaluated on
(LLM fine-tuning, speech, vision, diffusion, RL, recommenders, multimodal). This script
recreates the checked trees from bare mirrors, runs the tool given by --tool on each (as a
subprocess, JSON output, no cache) and prints per-repository and per-rule counts of
errors/warnings/info. With --verdicts it computes precision = true loud findings (warning +
error) / all loud findings, overall and per repository, and lists loud findings that have no
verdict as "unjudged". A verdict is keyed by (repo short name, relative path, line, code), so
it survives re-runs of a changed tool. No network is needed.

Getting the repositories:

  1. In a session with the `fetch` tool: fetch `github:<owner>/<name>` for each entry of
     REPOS; it returns a bare mirror /work/.mirror/<owner>+<name>/repo. Elsewhere:
     `git clone --bare https://github.com/<owner>/<name> <mirrors>/<owner>+<name>/repo` and
     check out the recorded commit (the script archives the recorded commit, not HEAD, when
     the mirror has it).
  2. python wild_eval.py --extract --mirrors /work/.mirror --root /work/wild/repos

Run (from the checkout's root; the tool is this checkout unless --tool names another):
  python bench/wild_eval.py --root /work/wild/repos [--tool /path/to/dropout-auditor]
         [--list findings.tsv] [--verdicts bench/wild_verdicts.tsv] [--only short1,short2]

bench/wild_verdicts.tsv holds every loud finding judged so far, with its evidence (the first
run's 119 on the frozen tool 13eebac, and the loud findings that appeared after the code-rule
fixes of #25). A loud finding it does not cover is listed as "unjudged": read the source,
judge it and append a line (repo, path, line, code, true/false, false class, evidence) before
quoting a precision. For a before/after comparison, run the script twice on the same root,
once with --tool pointing at a checkout of the older commit (`git worktree add /tmp/base <commit>`).

--tool is a checkout of dropout-auditor (the folder that holds the `auditor` package); it is
put on PYTHONPATH of `python -m auditor check DIR --format json --no-cache --root DIR`.
Default: the repository this script sits in (one folder up from the script when it lives in
bench/, else the script's own folder if it holds `auditor/`).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time

# short name -> (GitHub repository, folders extracted ("" = whole tree), commit, domain)
TUNED = {
    # LLM fine-tuning
    "Firefly": ("yangjianxin1/Firefly", "", "e22b406ee440fda0b18a073c6325853de17741cb", "llm"),
    "LMFlow": ("OptimalScale/LMFlow", "", "f3597dba134e8bb3d2cfedeaaae6fc7296ace924", "llm"),
    "h2o-llmstudio": ("h2oai/h2o-llmstudio", "", "a4971c11ed2c93e531607670df7ae9cb673936b4", "llm"),
    "Chinese-LLaMA-Alpaca-2": ("ymcui/Chinese-LLaMA-Alpaca-2", "", "2a334d1634c857a7f02f885026d02ac4b469479d", "llm"),
    "Megatron-LM": ("NVIDIA/Megatron-LM", "megatron examples tools pretrain_gpt.py pretrain_hybrid.py pretrain_mamba.py pretrain_vlm.py train_rl.py model_provider.py gpt_builders.py hybrid_builders.py mamba_builders.py", "d98e8a64ddf34856e74b24714e3bedb2f5a39553", "llm"),
    "lit-llama": ("Lightning-AI/lit-llama", "", "2a464de2a1d2f266614d15091d3d7f30330c3ede", "llm"),
    "OpenChatKit": ("togethercomputer/OpenChatKit", "", "a7094aa583d4ac9ecbe700f0c5b11e6bb28cb454", "llm"),
    # speech
    "wenet": ("wenet-e2e/wenet", "wenet examples tools", "015469960db73eb19c49a48c020d5ac9db69bae5", "speech"),
    "icefall": ("k2-fsa/icefall", "icefall egs/librispeech/ASR egs/ljspeech/TTS egs/ptb/LM egs/gigaspeech/ASR", "36e0420c7e3e849a25b3d24dbf913c424f3d23c9", "speech"),
    "asteroid": ("asteroid-team/asteroid", "", "92c8d83a9dbe7c3afd1cd097e31254e0b4f82881", "speech"),
    "coqui-TTS": ("coqui-ai/TTS", "", "dbf1a08a0d4e47fdad6172e433eeb34bc6b13b4e", "speech"),
    "s3prl": ("s3prl/s3prl", "s3prl", "ec8064b5889f81ca460fbe2c094ce576a6f120b7", "speech"),
    "FunASR": ("modelscope/FunASR", "funasr examples", "3c58cb56a56598232c3efffa15d313d7e82a4307", "speech"),
    # vision
    "timm": ("huggingface/pytorch-image-models", "", "aa4b5850c1543fa488abf260f18390eda46cf85d", "vision"),
    "yolov5": ("ultralytics/yolov5", "", "5081342f04fb287fc2e5f2b5a4e06752b7937b1c", "vision"),
    "Swin-Transformer": ("microsoft/Swin-Transformer", "", "f82860bfb5225915aca09c3227159ee9e1df874d", "vision"),
    "ConvNeXt": ("facebookresearch/ConvNeXt", "", "048efcea897d999aed302f2639b6270aedf8d4c8", "vision"),
    "mae": ("facebookresearch/mae", "", "efb2a8062c206524e35e47d04501ed4f544c0ae8", "vision"),
    "SlowFast": ("facebookresearch/SlowFast", "", "287ec0076846560f44a9327e931a5a2360240533", "vision"),
    # diffusion
    "sd-scripts": ("kohya-ss/sd-scripts", "", "48d368fa557731ad0488c07304dfeba8c07910eb", "diffusion"),
    "latent-diffusion": ("CompVis/latent-diffusion", "", "a506df5756472e2ebaf9078affdde2c4f1502cd4", "diffusion"),
    "stable-diffusion": ("CompVis/stable-diffusion", "", "21f890f9da3cfbeaba8e2ac3c425ee9e998d5229", "diffusion"),
    "generative-models": ("Stability-AI/generative-models", "", "0ad7de9a5cb53fd63d6d30a4f385485e72e08597", "diffusion"),
    "Open-Sora": ("hpcaitech/Open-Sora", "", "7ad6a96a135feb81f755c84fb391818718f6beb2", "diffusion"),
    "DiT": ("facebookresearch/DiT", "", "ed81ce2229091fd4ecc9a223645f95cf379d582b", "diffusion"),
    # reinforcement learning
    "stable-baselines3": ("DLR-RM/stable-baselines3", "", "e05d2dbe6eda0acd0ef2e316e3e4065677add3eb", "rl"),
    "decision-transformer": ("kzl/decision-transformer", "", "e2d82e68f330c00f763507b3b01d774740bee53f", "rl"),
    "torchrl": ("pytorch/rl", "torchrl sota-implementations examples", "ae9719f17b1517af5c2523a36c4616f003ee55cf", "rl"),
    "CORL": ("tinkoff-ai/CORL", "", "6afec90484bbf47dee05fdf525e26a3ebe028e9b", "rl"),
    "d3rlpy": ("takuseno/d3rlpy", "", "38c34b6f99fde82875e2ad81d1ba1f7a7da34137", "rl"),
    # recommenders
    "RecBole": ("RUCAIBox/RecBole", "recbole run_example", "7b02be5ec80a88310f2d04a27a82adfcbb5dc211", "recsys"),
    "DeepCTR-Torch": ("shenweichen/DeepCTR-Torch", "", "f6854257b1fc29caab655ce72c6b5528b7432574", "recsys"),
    "torchrec": ("pytorch/torchrec", "torchrec examples", "a48cef79ebc333da92af1311c04b041ee21a8e75", "recsys"),
    "FuxiCTR": ("reczoo/FuxiCTR", "fuxictr model_zoo", "0245987fdc1d43c36164ea496a02324885a8557a", "recsys"),
    "recommenders": ("recommenders-team/recommenders", "", "b02c95e2b98b961f9943ce561bbb03f8dff2f41f", "recsys"),
    # multimodal
    "LLaVA": ("haotian-liu/LLaVA", "", "c121f0432da27facab705978f83c4ada465e46fd", "multimodal"),
    "MiniGPT-4": ("Vision-CAIR/MiniGPT-4", "", "d94738a7626ec43eba6c2cddf3cd2043f1a9689a", "multimodal"),
    "mPLUG-Owl": ("X-PLUG/mPLUG-Owl", "", "0f3068fdb47b77aedc71fc39f5735cd7aa35e8f9", "multimodal"),
    "Qwen-VL": ("QwenLM/Qwen-VL", "", "aa00ed04091eea5fcdd32985e7915f1c53e7d599", "multimodal"),
    "Video-LLaMA": ("DAMO-NLP-SG/Video-LLaMA", "", "64888c0a77e8e66af606c37629fbbf79c4582959", "multimodal"),
}

# The held-out set (#25): 36 further repositories, first judged on 499d71f; the fixes after it
# were tuned on the set above, except where the held-out notes in docs/wild-evaluation.md say so.
HELDOUT = {
    # LLM fine-tuning
    "trlx": ("CarperAI/trlx", "", "3340c2f3a56d1d14fdd5f13ad575121fa26b6d92", "llm"),
    "LLaMA2-Accessory": ("Alpha-VLLM/LLaMA2-Accessory", "", "3777c43940ddfb45d3bc1046b118ca4401747ee2", "llm"),
    "alpaca_farm": ("tatsu-lab/alpaca_farm", "", "30717ddae735365de756ee2085191b491a71788d", "llm"),
    "llm_qlora": ("georgesung/llm_qlora", "", "cc6683effd218717502e15cac0f3901d73415c1d", "llm"),
    "microsoft-LoRA": ("microsoft/LoRA", "loralib examples/NLG", "c4593f060e6a368d7bb5af5273b8e42810cdef90", "llm"),
    # speech
    "vits": ("jaywalnut310/vits", "", "2e561ba58618d021b5b8323d3765880f7e0ecfdb", "speech"),
    "FastSpeech2": ("ming024/FastSpeech2", "", "d4e79eb52e8b01d24703b2dfc0385544092958f3", "speech"),
    "StyleTTS2": ("yl4579/StyleTTS2", "", "5cedc71c333f8d8b8551ca59378bdcc7af4c9529", "speech"),
    "fish-speech": ("fishaudio/fish-speech", "", "3dd1f85c402ee6f0a17c2971d3b0dd8d881ca139", "speech"),
    "distil-whisper": ("huggingface/distil-whisper", "", "cc96130f6e4cc74cab4545f3c6e7e5c204ced871", "speech"),
    "F5-TTS": ("SWivid/F5-TTS", "", "2ae2c9bd9b64dab2cb069c4b97e5e7673c521e01", "speech"),
    "CosyVoice": ("FunAudioLLM/CosyVoice", "", "ace7c47f41bbd303aa6bf1ea80e6f9fbd595cd40", "speech"),
    "so-vits-svc": ("svc-develop-team/so-vits-svc", "", "730930d337d171479eadf305f96cbed4bb393e77", "speech"),
    "audiocraft": ("facebookresearch/audiocraft", "", "896ec7c47f5e5d1e5aa1e4b260c4405328bf009d", "speech"),
    "NATSpeech": ("NATSpeech/NATSpeech", "", "2e7084e4c76ee165de8d6ff7dacf6011514fbe7c", "speech"),
    "ParallelWaveGAN": ("kan-bayashi/ParallelWaveGAN", "", "86740373ec609cb9fb192d472d2aea125041491a", "speech"),
    # vision
    "Mask2Former": ("facebookresearch/Mask2Former", "", "9b0651c6c1d5b3af2e6da0589b719c514ec0d69a", "vision"),
    "YOLOX": ("Megvii-BaseDetection/YOLOX", "", "6ddff4824372906469a7fae2dc3206c7aa4bbaee", "vision"),
    "Deformable-DETR": ("fundamentalvision/Deformable-DETR", "", "11169a60c33333af00a4849f1808023eba96a931", "vision"),
    "PVT": ("whai362/PVT", "", "57e2dfaa5a46f9050d76f306a4fcd9a7c061f520", "vision"),
    "TimeSformer": ("facebookresearch/TimeSformer", "", "a5ef29a7b7264baff199a30b3306ac27de901133", "vision"),
    # diffusion
    "ControlNet": ("lllyasviel/ControlNet", "", "ed85cd1e25a5ed592f7d8178495b4483de0331bf", "diffusion"),
    "IP-Adapter": ("tencent-ailab/IP-Adapter", "", "62e4af9d0c1ac7d5f8dd386a0ccf2211346af1a2", "diffusion"),
    "instruct-pix2pix": ("timothybrooks/instruct-pix2pix", "", "0dffd1eeb02611c35088462d1df88714ce2b52f4", "diffusion"),
    "cloneofsimo-lora": ("cloneofsimo/lora", "", "d84074b3e3496f1cfa8a3f49b8b9972ef463b483", "diffusion"),
    "ai-toolkit": ("ostris/ai-toolkit", "", "27a03a91f23eb1b757d5ec2e80ee3e129cfcc350", "diffusion"),
    "OneTrainer": ("Nerogar/OneTrainer", "", "23df3832e8f213d64c337e39f9365ba46e99fed0", "diffusion"),
    "improved-diffusion": ("openai/improved-diffusion", "", "1bc7bbbdc414d83d4abf2ad8cc1446dc36c4e4d5", "diffusion"),
    # reinforcement learning
    "online-dt": ("facebookresearch/online-dt", "", "c376fa113ba34bcd422da44598e8c2433c06a590", "rl"),
    "trajectory-transformer": ("jannerm/trajectory-transformer", "", "8834a6ed04ceeab8fdb9465e145c6e041c05d71b", "rl"),
    "tdmpc2": ("nicklashansen/tdmpc2", "", "e9f59321933cbc8e11a002b842adc7d4ffae8ff1", "rl"),
    # recommenders
    "SASRec.pytorch": ("pmixer/SASRec.pytorch", "", "fde8a9c08febc2c898dc269b1d98ab762c50d2be", "recsys"),
    "LightGCN-PyTorch": ("gusye1234/LightGCN-PyTorch", "", "947ca2b3b1d2d3545b114145710cb06c4e57b3d2", "recsys"),
    "KGIN": ("huangtinglin/Knowledge_Graph_based_Intent_Network", "", "0e4351716d4999b3f00715f764f0afe18048cf62", "recsys"),
    "CRSLab": ("RUCAIBox/CRSLab", "", "6497938919998b9cd7aa9c2f43effb39ad0c7088", "recsys"),
    "torch-rechub": ("datawhalechina/torch-rechub", "", "5a73b2eebc3a670dc64c54971cc06a78ddd55394", "recsys"),
}

# The #31 set: 27 repositories from vision, diffusion, GANs and graph learning that no earlier
# evaluation used, every finding judged, infos included (--judge-infos); extracted from HEAD of
# the mirrors at the recorded commits (files the mirror lacks, large binaries, are skipped).
VISION31 = {
    "taming-transformers": ("CompVis/taming-transformers", "", "3ba01b241669f5ade541ce990f7650a3b8f65318", "diffusion"),
    "PyTorch-GAN": ("eriklindernoren/PyTorch-GAN", "", "36d3c77e5ff20ebe0aeefd322326a134a279b93e", "gan"),
    "ConvNeXt-V2": ("facebookresearch/ConvNeXt-V2", "", "2553895753323c6fe0b2bf390683f5ea358a42b9", "vision"),
    "dino": ("facebookresearch/dino", "", "7c446df5b9f45747937fb0d72314eb9f7b66930a", "vision"),
    "ijepa": ("facebookresearch/ijepa", "", "52c1ae95d05f743e000e8f10a1f3a79b10cff048", "vision"),
    "moco-v3": ("facebookresearch/moco-v3", "", "c349e6e24f40d3fedb22d973f92defa4cedf37a7", "vision"),
    "detrex": ("IDEA-Research/detrex", "", "e244e6c3da3e84566728c52c21fb061d23ce0e2f", "vision"),
    "imagen-pytorch": ("lucidrains/imagen-pytorch", "", "c166739b03b06fbc2e7c00116ffc81724626ad08", "diffusion"),
    "vit-pytorch": ("lucidrains/vit-pytorch", "", "69d24fe9e3024c0d4b02761123b8583a24ebed1e", "vision"),
    "Graphormer": ("microsoft/Graphormer", "", "ac154fe4253d076a1c294f14be20dad0351cff3c", "graph"),
    "efficientvit": ("mit-han-lab/efficientvit", "", "de7d7733cc0329f391b33f1f459271562ec27bd5", "vision"),
    "edm": ("NVlabs/edm", "", "008a4e5316c8e3bfe61a62f874bddba254295afb", "diffusion"),
    "stylegan2-ada-pytorch": ("NVlabs/stylegan2-ada-pytorch", "", "d72cc7d041b42ec8e806021a205ed9349f87c6a4", "gan"),
    "mmaction2": ("open-mmlab/mmaction2", "", "4d6c93474730cad2f25e51109adcf96824efc7a3", "vision"),
    "mmocr": ("open-mmlab/mmocr", "", "966296f26ac34cf0e96d40ab4a0a94c9a697909a", "vision"),
    "mmpose": ("open-mmlab/mmpose", "", "759b39c13fea6ba094afc1fa932f51dc1b11cbf9", "vision"),
    "mmyolo": ("open-mmlab/mmyolo", "", "8c4d9dc503dc8e327bec8147e8dc97124052f693", "vision"),
    "consistency_models": ("openai/consistency_models", "", "e32b69ee436d518377db86fb2127a3972d0d8716", "diffusion"),
    "guided-diffusion": ("openai/guided-diffusion", "", "22e0df8183507e13a7813f8d38d51b072ca1e67c", "diffusion"),
    "PixArt-alpha": ("PixArt-alpha/PixArt-alpha", "", "cac2fd3b4544cf7620d8fbbf8b19d97ffcb85892", "diffusion"),
    "stylegan2-pytorch": ("rosinality/stylegan2-pytorch", "", "bef283a1c24087da704d16c30abc8e36e63efa0e", "gan"),
    "BLIP": ("salesforce/BLIP", "", "056a169437371659074aa2732649d5de3bffb4a8", "multimodal"),
    "GraphGym": ("snap-stanford/GraphGym", "", "daded21169ec92fde8b1252b439a8fac35b07d79", "graph"),
    "ogb": ("snap-stanford/ogb", "", "61e9784ca76edeaa6e259ba0f836099608ff0586", "graph"),
    "Latte": ("Vchitect/Latte", "", "b27c24a17487e3c33ae4e92364521303d0f14845", "diffusion"),
    "BasicSR": ("XPixelGroup/BasicSR", "", "8d56e3a045f9fb3e1d8872f92ee4a4f07f886b0a", "vision"),
    "score_sde_pytorch": ("yang-song/score_sde_pytorch", "", "cb1f359f4aadf0ff9a5e122fe8fffc9451fd6e44", "diffusion"),
}

# The second #31 set (session 35): 13 repositories from the same domains, fresh after VISION31
# was used to tune the info fixes; judged on the tool before any change made for them.
VISION31B = {
    "segment-anything": ("facebookresearch/segment-anything", "", "dca509fe793f601edb92606367a655c15ac00fdf", "vision"),
    "stylegan3": ("NVlabs/stylegan3", "", "c233a919a6faee6e36a316ddd4eddababad1adf9", "gan"),
    "pyGAT": ("Diego999/pyGAT", "", "3664f2dc90cbf971564c0bf186dc794f12446d0c", "graph"),
    "benchmarking-gnns": ("graphdeeplearning/benchmarking-gnns", "", "b6c407712fa576e9699555e1e035d1e327ccae6c", "graph"),
    "BigGAN-PyTorch": ("ajbrock/BigGAN-PyTorch", "", "98459431a5d618d644d54cd1e9fceb1e5045648d", "gan"),
    "DALLE2-pytorch": ("lucidrains/DALLE2-pytorch", "", "680dfc4d93b70f9ab23c814a22ca18017a738ef6", "diffusion"),
    "SwinIR": ("JingyunLiang/SwinIR", "", "6545850fbf8df298df73d81f3e8cba638787c8bd", "vision"),
    "VAR": ("FoundationVision/VAR", "", "78b95394fc5896192e3a003e4b295f8ea743c48f", "vision"),
    "generative-models": ("Stability-AI/generative-models", "", "0ad7de9a5cb53fd63d6d30a4f385485e72e08597", "diffusion"),
    "pytorch-cifar": ("kuangliu/pytorch-cifar", "", "49b7aa97b0c12fe0d4054e670403a16b6b834ddd", "vision"),
    "pygcn": ("tkipf/pygcn", "", "1600b5b748b3976413d1e307540ccc62605b4d6d", "graph"),
    "glide-text2im": ("openai/glide-text2im", "", "69b530740eb6cef69442d6180579ef5ba9ef063e", "diffusion"),
    "mmf": ("facebookresearch/mmf", "", "b0ffc7fba39f210f833c127362146aec01a2f259", "multimodal"),
}

# A third fresh set (session 35), fetched after the fixes made on VISION31B, to measure them:
# judged on 30e8556, before the DRP200 change its pretrain-gnns findings led to.
VISION31C = {
    "ddim": ("ermongroup/ddim", "", "e8df66cf02e457719930748b5c26e37e3126dfdd", "diffusion"),
    "point-e": ("openai/point-e", "", "fc8a607c08a3ea804cc82bf1ef8628f88a3a5d2f", "diffusion"),
    "stargan-v2": ("clovaai/stargan-v2", "", "875b70a150609e8a678ed8482562e7074cdce7e5", "gan"),
    "contrastive-unpaired-translation": ("taesungp/contrastive-unpaired-translation", "",
                                         "b3ac297708dfb6f7589d04662277e53c0d579c27", "gan"),
    "SPADE": ("NVlabs/SPADE", "", "fecacc920c1367a038995c45a39c15f6521ca64f", "gan"),
    "poolformer": ("sail-sg/poolformer", "", "a075575b8b3dc3c76ecc5c49985d156167372bfa", "vision"),
    "swav": ("facebookresearch/swav", "", "06b1b7cbaf6ba2a792300d79c7299db98b93b7f9", "vision"),
    "pretrain-gnns": ("snap-stanford/pretrain-gnns", "", "8b20528a83b8869ce16451305b32c827258d19a3", "graph"),
    "DGI": ("PetarV-/DGI", "", "61baf67d7052905c77bdeb28c22926f04e182362", "graph"),
    "GCNII": ("chennnM/GCNII", "", "ca91f5686c4cd09cc1c6f98431a5d5b7e36acc92", "graph"),
    "stylegan2-pytorch-lucidrains": ("lucidrains/stylegan2-pytorch", "", "ce7f830bc10d037cddc75d6166904baf07945cf6", "gan"),
    "simsiam": ("facebookresearch/simsiam", "", "a7bc1772896d0dad0806c51f0bb6f3b16d290468", "vision"),
}

# The fourth #31 set (session 36): 12 fresh repositories from the same domains (a second
# generation of the SSL, diffusion, GAN/restoration, detection and graph code), judged on
# 11ccca9 before any change made for them.
VISION31D = {
    "barlowtwins": ("facebookresearch/barlowtwins", "", "8e8d284ca0bc02f88b92328e53f9b901e86b4a3c", "vision"),
    "vicreg": ("facebookresearch/vicreg", "", "4e12602fd495af83efd1631fbe82523e6db092e0", "vision"),
    "yolov7": ("WongKinYiu/yolov7", "", "a207844b1ce82d204ab36d87d496728d3d2348e7", "vision"),
    "GroundingDINO": ("IDEA-Research/GroundingDINO", "", "856dde20aee659246248e20734ef9ba5214f5e44", "vision"),
    "SiT": ("willisma/SiT", "", "947f95bd3a510e9af441d38c1e9f72e0eee873c5", "diffusion"),
    "mar": ("LTH14/mar", "", "fe470ac24afbee924668d8c5c83e9fec60af3a73", "diffusion"),
    "edm2": ("NVlabs/edm2", "", "4bf8162f601bcc09472ce8a32dd0cbe8889dc8fc", "diffusion"),
    "Real-ESRGAN": ("xinntao/Real-ESRGAN", "", "a4abfb2979a7bbff3f69f58f58ae324608821e27", "gan"),
    "stargan": ("yunjey/stargan", "", "94dd002e93a2863d9b987a937b85925b80f7a19f", "gan"),
    "HAT": ("XPixelGroup/HAT", "", "1638a9a822581657811867bf670717f8371fc3e5", "vision"),
    "graphtransformer": ("graphdeeplearning/graphtransformer", "", "c9cd49368eed4507f9ae92a137d90a7a9d7efc3a", "graph"),
    "pytorch_geometric_temporal": ("benedekrozemberczki/pytorch_geometric_temporal", "",
                                   "adefe44265ad8faf239fd6cf3b59b95ca3ee60aa", "graph"),
}

# The fifth #31 set: 12 fresh repositories from the same domains (graph, diffusion
# and flow matching, SSL/detection, GAN/restoration), extracted before any judging.
VISION31E = {
    "GraphMAE": ("THUDM/GraphMAE", "", "b14f080c919257b495e3cb6474286d5252d6a635", "graph"),
    "GraphGPS": ("rampasek/GraphGPS", "", "28015707cbab7f8ad72bed0ee872d068ea59c94b", "graph"),
    "dgl": ("dmlc/dgl", "examples/pytorch/gat examples/pytorch/gcn examples/pytorch/graphsage",
            "3d16000b4170fa741ed9e9667f22ba84d3493026", "graph"),
    "minRF": ("cloneofsimo/minRF", "", "4fc10e0cc8ba976152c7936a1af9717209f03e18", "diffusion"),
    "flow_matching": ("facebookresearch/flow_matching", "", "11568d37f8d5a080e12aa7b5305d9c35ae07d136", "diffusion"),
    "rcg": ("LTH14/rcg", "", "0c4433c1d7fed93ed0dc81a6bde2acfe335d3798", "diffusion"),
    "msn": ("facebookresearch/msn", "", "4388dc1eadbe3042b85d3296d41b9b207656e043", "vision"),
    "jepa": ("facebookresearch/jepa", "", "51c59d518fc63c08464af6de585f78ac0c7ed4d5", "vision"),
    "YOLOS": ("hustvl/YOLOS", "", "5717fc29d727dab84ad585c56457b4de1225eddc", "vision"),
    "imaginaire": ("NVlabs/imaginaire", "", "c6f74845c699c58975fd12b778c375b72eb00e8d", "gan"),
    "NAFNet": ("megvii-research/NAFNet", "", "2b4af71ebe098a92a75910c233a3965a3e93ede4", "vision"),
    "KAIR": ("cszn/KAIR", "", "fc1732f4a4514e42ce15e5b3a1e18c828af47a1e", "vision"),
}

# The sixth #31 set: 12 fresh repositories from the same domains (graph, diffusion,
# vision SSL/classification/detection, GAN/restoration), extracted before any judging.
VISION31F = {
    "tgn": ("twitter-research/tgn", "", "d55bbe678acabb9fc3879c408fd1f2e15919667c", "graph"),
    "heterophilous-graphs": ("yandex-research/heterophilous-graphs", "",
                             "a431395582e929d88271309716bea4fe24ce6318", "graph"),
    "DIG": ("divelab/DIG", "dig/sslgraph examples/sslgraph", "21476b079c9226f38915dcd082b5c2ee0cddaac8", "graph"),
    "U-ViT": ("baofff/U-ViT", "", "ce551708dc9cde9818d2af7d84dfadfeb7bd9034", "diffusion"),
    "MDT": ("sail-sg/MDT", "", "7d26c2162c462bd0b90f97f3a1c36cdaaac616ec", "diffusion"),
    "LSGM": ("NVlabs/LSGM", "", "5eae2f385c014f2250c3130152b6be711f6a3a5a", "diffusion"),
    "InternImage": ("OpenGVLab/InternImage", "classification", "31c962dc6c1ceb23e580772f7daaa6944694fbe6", "vision"),
    "Detic": ("facebookresearch/Detic", "", "436cda2a2347df60a7c66daca0e8c59f93dc5e79", "vision"),
    "ibot": ("bytedance/ibot", "", "da316d82636a7a7356835ef224b13d5f3ace0489", "vision"),
    "GFPGAN": ("TencentARC/GFPGAN", "", "7552a7791caad982045a7bbe5634bbf1cd5c8679", "gan"),
    "CodeFormer": ("sczhou/CodeFormer", "", "b33cc7d639d6545bfcccc7e0bc6ae51f24e79c2b", "gan"),
    "BasicVSR_PlusPlus": ("ckkelvinchan/BasicVSR_PlusPlus", "", "bbd417c6ac3b995148e98960f4b7458900774889", "vision"),
}

# The seventh #31 set: 12 fresh repositories from the same domains (graph, diffusion,
# vision SSL/classification/segmentation, GAN/restoration/video), extracted before any judging.
VISION31G = {
    "pytorch-GAT": ("gordicaleksa/pytorch-GAT", "", "39c8f0ee634477033e8b1a6e9a6da3c7ed71bbd1", "graph"),
    "powerful-gnns": ("weihua916/powerful-gnns", "", "9a2ce8ac3e99278307093a464a95caf0fb04b602", "graph"),
    "ClusterGCN": ("benedekrozemberczki/ClusterGCN", "", "ecc9b7e6e2c1fb359aaf78e361446058b2b655b3", "graph"),
    "Diffusion-GAN": ("Zhendong-Wang/Diffusion-GAN", "", "2ca5e7aa21f07a3ff0e78966e5796c580126c14f", "diffusion"),
    "mini_edm": ("yuanzhi-zhu/mini_edm", "", "9031fda7ff9f3887581a93c9a4024e67e819537e", "diffusion"),
    "ddae": ("FutureXiang/ddae", "", "ddd4a3b7338cedd2bcff2dd849e6d90c5337d056", "diffusion"),
    "VideoMAE": ("MCG-NJU/VideoMAE", "", "14ef8d856287c94ef1f985fe30f958eb4ec2c55d", "vision"),
    "LeViT": ("facebookresearch/LeViT", "", "3772b8e7517b900330ee1f46e11b0ae917dae323", "vision"),
    "SegFormer": ("NVlabs/SegFormer", "local_configs mmseg/models tools",
                  "65fa8cfa9b52b6ee7e8897a98705abf8570f9e32", "vision"),
    "RCAN": ("yulunzhang/RCAN", "", "f722e5d0e1eff45148bfaefd9bc85c6f0f26ce02", "vision"),
    "vid2vid": ("NVIDIA/vid2vid", "", "2e6d13755fc2e33200e7d4c0c44f2692d6ab0898", "gan"),
    "DiffBIR": ("XPixelGroup/DiffBIR", "diffbir configs train_stage1.py train_stage2.py inference.py",
                "3f8b5304245ba0ffd6f1995e51c27c3c72d7618f", "vision"),
}

VISION31H = {
    "mmagic": ("open-mmlab/mmagic", "configs mmagic tools", "0a560bba9b79ebe78574e1d4cbbdd0e798e63568", "gan"),
    "mmrotate": ("open-mmlab/mmrotate", "configs mmrotate tools", "b030f38909fc431be7ecb90772ac30da9da29bcb", "vision"),
    "pytorchvideo": ("facebookresearch/pytorchvideo", "pytorchvideo pytorchvideo_trainer",
                     "f3142bb05cdb56af0704ab6f0adfb0c7bbafe4a0", "vision"),
    "ImageBind": ("facebookresearch/ImageBind", "", "53680b02d7e37b19b124fa37bae4b6c98c38f5be", "multimodal"),
    "LAVIS": ("salesforce/LAVIS", "lavis", "506965b9c4a18c1e565bd32acaccabe0198433f7", "multimodal"),
    "open_clip": ("mlfoundations/open_clip", "src", "89fb801f1e6087880e951fc8354b8a2077b79c6d", "multimodal"),
    "Open-Sora-Plan": ("PKU-YuanGroup/Open-Sora-Plan", "opensora", "f7fa604f4e3a523d6b973e4c89a5620ed1aff65a",
                       "diffusion"),
    "sam2": ("facebookresearch/sam2", "sam2 training", "2b90b9f5ceec907a1c18123530e92e794ad901a4", "vision"),
    "unilm-beit": ("microsoft/unilm", "beit beit2", "768a3c873f598bb9b4d4dfb9267b099e35f8fe56", "vision"),
    "BEVFormer": ("fundamentalvision/BEVFormer", "projects tools", "66b65f3a1f58caf0507cb2a971b9c0e7f842376c",
                  "vision"),
    "mmdetection3d": ("open-mmlab/mmdetection3d", "configs mmdet3d tools", "fe25f7a51d36e3702f961e198894580d83c4387b",
                      "vision"),
}

REPOS = TUNED

LOUD = ("warning", "error")
PARSE_CODES = ("DRP000", "DRP001")  # parse errors: true as stated, but not dropout problems


def default_tool() -> str | None:
    """The nearest folder at or above this script that holds the `auditor` package."""
    cand = os.path.dirname(os.path.abspath(__file__))
    while True:
        if os.path.isfile(os.path.join(cand, "auditor", "__init__.py")):
            return cand
        parent = os.path.dirname(cand)
        if parent == cand:
            return None
        cand = parent


def _git(git_dir: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "--git-dir", git_dir, *args], capture_output=True, **kw)


def extract(root: str, mirrors: str, only: set) -> None:
    for short, (repo, folders, commit, _domain) in REPOS.items():
        if only and short not in only:
            continue
        git_dir = os.path.join(mirrors, repo.replace("/", "+"), "repo")
        if not os.path.isdir(git_dir):
            print(f"skip {short}: no mirror at {git_dir} (fetch github:{repo} first)", file=sys.stderr)
            continue
        rev = "HEAD"
        if commit and _git(git_dir, "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0:
            rev = commit
        elif commit:
            print(f"{short}: recorded commit {commit} not in the mirror, using HEAD", file=sys.stderr)
        full = _git(git_dir, "rev-parse", rev, text=True).stdout.strip()
        date = _git(git_dir, "log", "-1", "--format=%cs", rev, text=True).stdout.strip()
        dest = os.path.join(root, short)
        os.makedirs(dest, exist_ok=True)
        subs = folders.split()
        done = _git(git_dir, "archive", rev, "--", *subs)
        if done.returncode == 0:
            subprocess.run(["tar", "-x", "-C", dest], input=done.stdout, check=True)
        else:  # a snapshot without its largest blobs: write the files one by one, skip the missing
            names = _git(git_dir, "ls-tree", "-r", "--name-only", rev, "--", *subs, text=True).stdout.split("\n")
            missing = 0
            for name in filter(None, names):
                blob = _git(git_dir, "show", f"{rev}:{name}")
                if blob.returncode:
                    missing += 1
                    continue
                out = os.path.join(dest, name)
                os.makedirs(os.path.dirname(out), exist_ok=True)
                with open(out, "wb") as fh:
                    fh.write(blob.stdout)
            print(f"{short}: archive failed, wrote files one by one ({missing} missing blobs skipped)",
                  file=sys.stderr)
        with open(os.path.join(dest, ".commit"), "w", encoding="utf-8") as fh:
            fh.write(f"{repo} {full} {date} {folders or '.'}\n")


def run_tool(tool: str, path: str, python: str, select: str | None) -> dict:
    env = dict(os.environ, PYTHONPATH=tool + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
    cmd = [python, "-m", "auditor", "check", path, "--format", "json", "--no-cache", "--root", path,
           "--no-progress", "--exit-zero"]
    if select:
        cmd += ["--select", select]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=path)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"tool failed on {path} (rc {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def read_verdicts(path: str) -> dict:
    """TSV: repo, relative path, line, code, true|false, false class, evidence."""
    verdicts = {}
    with open(path, encoding="utf-8") as fh:
        for row in fh:
            if not row.strip() or row.startswith("#"):
                continue
            cells = row.rstrip("\n").split("\t")
            repo, rel, line, code, verdict = cells[:5]
            klass = cells[5] if len(cells) > 5 else ""
            evidence = cells[6] if len(cells) > 6 else ""
            verdicts[(repo, rel, int(line), code)] = (verdict.strip().lower() == "true", klass,
                                                      evidence.lstrip().startswith("(latent)"))
    return verdicts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default="/work/wild/repos")
    ap.add_argument("--tool", default=default_tool(), help="checkout of dropout-auditor to run")
    ap.add_argument("--python", default=sys.executable, help="interpreter that runs the tool")
    ap.add_argument("--select", help="rule selectors passed to --select (default: all rules)")
    ap.add_argument("--only", default="", help="comma-separated short names to run")
    ap.add_argument("--verdicts", help="judged findings (TSV) to compute precision")
    ap.add_argument("--list", help="write every finding as TSV (repo, path, line, code, severity, message)")
    ap.add_argument("--json", help="write the raw per-repository results as JSON")
    ap.add_argument("--extract", action="store_true", help="extract the folders from bare mirrors first")
    ap.add_argument("--mirrors", default="/work/.mirror")
    ap.add_argument("--set", choices=("tuned", "heldout", "vision31", "vision31b", "vision31c", "vision31d",
                                       "vision31e", "vision31f", "vision31g", "vision31h"),
                    default="tuned",
                    help="the 40 repositories the #25 fixes were made on, the 36 held out from them, #31's 27, "
                         "or #31's fresh 13 (vision31b), 12 (vision31c), 12 (vision31d), 12 (vision31e), "
                         "12 (vision31f), 12 (vision31g) and 11 (vision31h)")
    ap.add_argument("--judge-infos", action="store_true",
                    help="score infos against the verdicts too (#31: infos must inform, not only be quiet)")
    args = ap.parse_args(argv)
    global REPOS
    REPOS = {"heldout": HELDOUT, "vision31": VISION31, "vision31b": VISION31B, "vision31c": VISION31C,
             "vision31d": VISION31D, "vision31e": VISION31E,
             "vision31f": VISION31F, "vision31g": VISION31G, "vision31h": VISION31H}.get(args.set, TUNED)
    judged_levels = LOUD + (("info",) if args.judge_infos else ())
    if not args.tool:
        ap.error("no dropout-auditor checkout above this script: pass --tool PATH")
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if args.extract:
        extract(args.root, args.mirrors, only)
    verdicts = read_verdicts(args.verdicts) if args.verdicts else {}
    per_rule = collections.defaultdict(collections.Counter)
    per_repo = collections.defaultdict(collections.Counter)
    rows, unjudged, raw = [], [], {}
    false_classes = collections.Counter()
    per_level = collections.defaultdict(collections.Counter)  # (code, severity) -> true/false counts
    parse = collections.Counter()  # verdicts of parse-error findings (DRP000/DRP001)
    print(f"tool: {args.tool}", file=sys.stderr)
    for short in REPOS:
        if only and short not in only:
            continue
        path = os.path.join(args.root, short)
        if not os.path.isdir(path):
            print(f"missing {path}: run with --extract (see the module docstring)", file=sys.stderr)
            continue
        t0 = time.time()
        report = run_tool(args.tool, path, args.python, args.select)
        raw[short] = report
        r = per_repo[short]
        r["files"] = report.get("files_checked", 0)
        r["seconds"] = round(time.time() - t0, 1)
        for f in report["findings"]:
            rel = os.path.relpath(f["path"], path) if os.path.isabs(f["path"]) else f["path"]
            sev, code, line = f["severity"], f["code"], int(f["line"])
            msg = f["message"].replace(path.rstrip(os.sep) + os.sep, "").replace("\t", " ").replace("\n", " ")
            rows.append((short, rel, line, code, sev, msg))
            per_rule[code][sev] += 1
            per_rule[code][f"repo:{short}"] += 1
            r[sev] += 1
            if sev in judged_levels:
                v = verdicts.get((short, rel, line, code))
                if v is None:
                    state = "unjudged"
                    unjudged.append(rows[-1])
                else:
                    state = "true" if v[0] else "false"
                    if not v[0]:
                        false_classes[v[1] or "(no class)"] += 1
                    elif v[2]:
                        r["latent"] += 1
                    if code in PARSE_CODES:
                        parse[state] += 1
                per_rule[code][state] += 1
                per_level[(code, sev)][state] += 1
                r[state] += 1
    if args.list:
        with open(args.list, "w", encoding="utf-8") as fh:
            fh.write("# repo\tpath\tline\tcode\tseverity\tmessage\n")
            for row in rows:
                fh.write("\t".join(map(str, row)) + "\n")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(raw, fh, indent=1)

    print("## Per repository\n")
    print("| repo | domain | files | error | warning | info | true | false | unjudged | precision |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    tot = collections.Counter()
    for short, r in per_repo.items():
        judged = r["true"] + r["false"]
        prec = f"{r['true']}/{judged} = {r['true'] / judged:.2f}" if judged else "-"
        print(f"| {short} | {REPOS[short][3]} | {r['files']} | {r['error']} | {r['warning']} | {r['info']} | "
              f"{r['true']} | {r['false']} | {r['unjudged']} | {prec} |")
        tot.update({k: v for k, v in r.items() if k != "seconds"})
    judged = tot["true"] + tot["false"]
    print(f"| **all** | | {tot['files']} | {tot['error']} | {tot['warning']} | {tot['info']} | {tot['true']} | "
          f"{tot['false']} | {tot['unjudged']} | "
          + (f"{tot['true']}/{judged} = {tot['true'] / judged:.2f}" if judged else "-") + " |")

    print("\n## Per rule\n")
    print("| rule | error | warning | info | true | false | unjudged | repositories |")
    print("|---|---|---|---|---|---|---|---|")
    for code in sorted(per_rule):
        c = per_rule[code]
        repos = ", ".join(f"{k[5:]} {v}" for k, v in sorted(c.items()) if k.startswith("repo:"))
        print(f"| {code} | {c['error']} | {c['warning']} | {c['info']} | {c['true']} | {c['false']} | "
              f"{c['unjudged']} | {repos} |")

    loud = tot["error"] + tot["warning"] + (tot["info"] if args.judge_infos else 0)
    what = "error+warning+info" if args.judge_infos else "warning+error"
    print(f"\nfindings judged ({what}): {loud}; true {tot['true']}, false {tot['false']}, "
          f"unjudged {tot['unjudged']}")
    if loud:
        print(f"precision (true / all {what}): {tot['true']}/{loud} = {tot['true'] / loud:.2f}")
    if args.judge_infos:
        for level in ("info", "warning", "error"):
            t = sum(c["true"] for code, c in per_level.items() if code[1] == level)
            n = sum(c["true"] + c["false"] for code, c in per_level.items() if code[1] == level)
            if n:
                print(f"  {level}: {t}/{n} = {t / n:.2f}")
    if judged and judged != loud:
        print(f"precision over judged only: {tot['true']}/{judged} = {tot['true'] / judged:.2f}")
    if judged:
        print(f"true findings marked (latent) in the evidence (rate settable, shipped value 0): {tot['latent']}")
        pt, pj = tot["true"] - parse["true"], judged - parse["true"] - parse["false"]
        if pj:
            print(f"precision without parse errors ({'/'.join(PARSE_CODES)}: {parse['true']} true, "
                  f"{parse['false']} false): {pt}/{pj} = {pt / pj:.2f}")
    if false_classes:
        print("\nfalse classes: " + ", ".join(f"{k} {v}" for k, v in false_classes.most_common()))
    if verdicts and unjudged:
        print(f"\n## Unjudged loud findings ({len(unjudged)})\n")
        for row in unjudged:
            print("\t".join(map(str, row)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
