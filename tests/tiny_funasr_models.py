"""Tiny random-weight FunASR model folders (SeACo-Paraformer, Paraformer, streaming Paraformer, FSMN-VAD, CT-punc),
built from FunASR's own registered classes so `funasr.AutoModel` loads them from disk like downloaded models.

The text they produce is garbage; loading, hotwords, timestamps, VAD splitting and batching run the real code.
Adapted from ../shared/tools/make_tiny_funasr_models.py (FunASR 1.4.x).
"""

import json
import os

# importing funasr populates the registry (funasr/__init__ imports every submodule)
import funasr  # noqa: F401
import torch
import yaml
from funasr.register import tables

# ---------------------------------------------------------------- vocab
CHARS = list(
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入几口认条平系气题活尔更别打女变四神总何电数安少报才结反受目太量再感建务做接必场件计管期市直德资命山金指克许统区保至队形社便空决治展马科司五基眼书非则听白却界达光放强即像难且权思王象完设式色路记南品住告类求据程北边死张该交规万取拉格望觉术领共确传师观清今切院让识候带导争运笑飞风步改收根干造言联持组每济车亲极林服快办议往元英士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备兵连调深商算质团集百需价花党华城石级整府离况亚请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企八功吗包片史委乎查轻易早曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考落青随选列武红响虽推势参希古众构房半节土投某案黑维革划敌致陈律足态护七兴派孩验责营星够章音跟志底站严巴例防族供效续施留讲型料终答紧黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采举杀攻父苏密低朝友诉止细愿千值仍男钱破网热助倒育属坐帝限船脸职速刻乐否刚威毛状率甚独球般普怕弹校苦创假久错承印晚兰试股拿脑预谁益阳若哪微尼继送急血惊伤素药适波夜省初喜卫源食险待述陆习置居劳财环排福纳欢雷警获模充负云停木游龙树疑层冷洲冲射略范竟句室异激汉村哈策演简卡罪判担州静退既衣您宗积余痛检差富灵协角占配征修皮挥胜降阶审沉坚善妈刘读啊超免压银买皇养伊怀执副乱抗犯追帮宣佛岁航优怪香著田铁控税左右份穿艺背阵草脚概恶块顿敢守酒岛托央户烈洋哥索胡款靠评版宝座释景顾弟登货互付伯慢欧换闻危忙核暗姐介坏讨丽良序升监临亮露永呼味野架域沙掉括舰鱼杂误湖钟奥"
)
CHARS = list(dict.fromkeys(CHARS))  # tokens must be unique
TOKENS = ["<blank>", "<s>", "</s>"] + CHARS + [c for c in "abcdefghijklmnopqrstuvwxyz"] + ["<unk>"]
VOCAB = len(TOKENS)


def write_common(d, tokens=TOKENS, mvn_dim=560, seg_dict=True):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokens.json"), "w", encoding="utf-8") as f:
        json.dump(tokens, f, ensure_ascii=False)
    if mvn_dim:
        # Kaldi nnet1 text format, read by funasr.frontends.wav_frontend.load_cmvn
        shift = " ".join(["0.0"] * mvn_dim)
        scale = " ".join(["0.1"] * mvn_dim)
        with open(os.path.join(d, "am.mvn"), "w") as f:
            f.write(f"<Nnet>\n<Splice> {mvn_dim} {mvn_dim}\n[ 0 ]\n")
            f.write(f"<AddShift> {mvn_dim} {mvn_dim}\n<LearnRateCoef> 0 [ {shift} ]\n")
            f.write(f"<Rescale> {mvn_dim} {mvn_dim}\n<LearnRateCoef> 0 [ {scale} ]\n</Nnet>\n")
    if seg_dict:
        # seg_dict: "<word> <token> <token> ..."; used for hotword tokenisation (SeACo)
        with open(os.path.join(d, "seg_dict"), "w", encoding="utf-8") as f:
            for t in tokens[3:-1]:
                f.write(f"{t} {t}\n")


def build_and_save(d, config):
    """Instantiate the registered model class exactly as AutoModel.build_model does."""
    with open(os.path.join(d, "config.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, allow_unicode=True, sort_keys=False)
    kw = dict(config)
    kw["vocab_size"] = len(json.load(open(os.path.join(d, "tokens.json"), encoding="utf-8")))
    if "frontend" in config:
        fe = tables.frontend_classes.get(config["frontend"])(**config.get("frontend_conf", {}))
        kw["input_size"] = fe.output_size()
    conf = dict(kw.get("model_conf", {}))
    conf.update(kw)
    torch.manual_seed(0)
    model = tables.model_classes.get(config["model"])(**conf)
    return model


def save(model, d):
    torch.save(model.state_dict(), os.path.join(d, "model.pt"))
    n = sum(p.numel() for p in model.parameters())
    print(f"{d}: {n} params, model.pt {os.path.getsize(os.path.join(d, 'model.pt')) / 1e6:.2f} MB")


def write_configuration_json(d, task, with_seg=True, with_mvn=True):
    metas = {"init_param": "model.pt", "config": "config.yaml", "tokenizer_conf": {"token_list": "tokens.json"}}
    if with_seg:
        metas["tokenizer_conf"]["seg_dict_file"] = "seg_dict"
    if with_mvn:
        metas["frontend_conf"] = {"cmvn_file": "am.mvn"}
    cj = {
        "framework": "pytorch",
        "task": task,
        "model": {"type": "funasr"},
        "pipeline": {"type": "funasr-pipeline"},
        "file_path_metas": metas,
    }
    with open(os.path.join(d, "configuration.json"), "w") as f:
        json.dump(cj, f, indent=2)


D = 32  # hidden size of the tiny ASR
FRONTEND_ASR = {
    "fs": 16000,
    "window": "hamming",
    "n_mels": 80,
    "frame_length": 25,
    "frame_shift": 10,
    "lfr_m": 7,
    "lfr_n": 6,
    "dither": 0.0,
}
ENC = {
    "output_size": D,
    "attention_heads": 2,
    "linear_units": 64,
    "num_blocks": 2,
    "dropout_rate": 0.1,
    "positional_dropout_rate": 0.1,
    "attention_dropout_rate": 0.1,
    "input_layer": "pe",
    "pos_enc_class": "SinusoidalPositionEncoder",
    "normalize_before": True,
    "kernel_size": 11,
    "sanm_shfit": 0,
    "selfattention_layer_type": "sanm",
}
DEC = {
    "attention_heads": 2,
    "linear_units": 64,
    "num_blocks": 2,
    "dropout_rate": 0.1,
    "positional_dropout_rate": 0.1,
    "self_attention_dropout_rate": 0.1,
    "src_attention_dropout_rate": 0.1,
    "att_layer_num": 2,
    "kernel_size": 11,
    "sanm_shfit": 0,
}
TOK = {"tokenizer": "CharTokenizer", "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True}}


def tiny_seaco(d):
    write_common(d)
    cfg = {
        "model": "SeacoParaformer",
        "model_conf": {
            "ctc_weight": 0.0,
            "lsm_weight": 0.1,
            "length_normalized_loss": True,
            "predictor_weight": 1.0,
            "predictor_bias": 1,
            "sampling_ratio": 0.75,
            "inner_dim": D,
            "bias_encoder_type": "lstm",
            "bias_encoder_bid": False,
            "seaco_lsm_weight": 0.1,
            "seaco_length_normal": True,
            "train_decoder": False,
            "NO_BIAS": VOCAB - 2,
        },
        "encoder": "SANMEncoder",
        "encoder_conf": ENC,
        "decoder": "ParaformerSANMDecoder",
        "decoder_conf": DEC,
        "seaco_decoder": "ParaformerSANMDecoder",
        "seaco_decoder_conf": {
            "attention_heads": 2,
            "linear_units": 64,
            "num_blocks": 1,
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "self_attention_dropout_rate": 0.1,
            "src_attention_dropout_rate": 0.1,
            "kernel_size": 21,
            "sanm_shfit": 0,
            "use_output_layer": False,
            "wo_input_layer": True,
        },
        "predictor": "CifPredictorV3",
        "predictor_conf": {
            "idim": D,
            "threshold": 1.0,
            "l_order": 1,
            "r_order": 1,
            "tail_threshold": 0.45,
            "smooth_factor2": 0.25,
            "noise_threshold2": 0.01,
            "upsample_times": 3,
            "use_cif1_cnn": False,
            "upsample_type": "cnn_blstm",
        },
        "frontend": "WavFrontend",
        "frontend_conf": FRONTEND_ASR,
        **TOK,
    }
    m = build_and_save(d, cfg)
    save(m, d)


def tiny_paraformer(d):
    write_common(d)
    cfg = {
        "model": "Paraformer",
        "model_conf": {
            "ctc_weight": 0.0,
            "lsm_weight": 0.1,
            "length_normalized_loss": True,
            "predictor_weight": 1.0,
            "predictor_bias": 1,
            "sampling_ratio": 0.75,
        },
        "encoder": "SANMEncoder",
        "encoder_conf": ENC,
        "decoder": "ParaformerSANMDecoder",
        "decoder_conf": DEC,
        "predictor": "CifPredictorV2",
        "predictor_conf": {"idim": D, "threshold": 1.0, "l_order": 1, "r_order": 1, "tail_threshold": 0.45},
        "frontend": "WavFrontend",
        "frontend_conf": FRONTEND_ASR,
        **TOK,
    }
    m = build_and_save(d, cfg)
    save(m, d)


def tiny_paraformer_streaming(d):
    write_common(d)
    enc = dict(
        ENC,
        input_layer="pe_online",
        chunk_size=[12, 15],
        stride=[8, 10],
        pad_left=[0, 0],
        encoder_att_look_back_factor=[4, 4],
        decoder_att_look_back_factor=[1, 1],
    )
    cfg = {
        "model": "ParaformerStreaming",
        "model_conf": {
            "ctc_weight": 0.0,
            "lsm_weight": 0.1,
            "length_normalized_loss": True,
            "predictor_weight": 1.0,
            "predictor_bias": 1,
            "sampling_ratio": 0.75,
        },
        "encoder": "SANMEncoderChunkOpt",
        "encoder_conf": enc,
        "decoder": "ParaformerSANMDecoder",
        "decoder_conf": dict(DEC, sanm_shfit=5),
        "predictor": "CifPredictorV2",
        "predictor_conf": {"idim": D, "threshold": 1.0, "l_order": 1, "r_order": 1, "tail_threshold": 0.45},
        "frontend": "WavFrontendOnline",
        "frontend_conf": FRONTEND_ASR,
        **TOK,
    }
    m = build_and_save(d, cfg)
    save(m, d)


def tiny_vad(d, energy_vad=True):
    write_common(d, tokens=["<unk>"], mvn_dim=400, seg_dict=False)
    os.remove(os.path.join(d, "tokens.json"))  # VAD has no tokenizer
    # identity CMVN (shift 0, scale 1) so the crafted weights see raw log-mel
    shift = " ".join(["0.0"] * 400)
    scale = " ".join(["1.0"] * 400)
    with open(os.path.join(d, "am.mvn"), "w") as f:
        f.write(f"<Nnet>\n<AddShift> 400 400\n<LearnRateCoef> 0 [ {shift} ]\n")
        f.write(f"<Rescale> 400 400\n<LearnRateCoef> 0 [ {scale} ]\n</Nnet>\n")
    cfg = {
        "model": "FsmnVADStreaming",
        "model_conf": {
            "sample_rate": 16000,
            "detect_mode": 1,
            "snr_mode": 0,
            "max_end_silence_time": 800,
            "max_start_silence_time": 3000,
            "do_start_point_detection": True,
            "do_end_point_detection": True,
            "window_size_ms": 200,
            "sil_to_speech_time_thres": 150,
            "speech_to_sil_time_thres": 150,
            "speech_2_noise_ratio": 1.0,
            "do_extend": 1,
            "lookback_time_start_point": 200,
            "lookahead_time_end_point": 100,
            "max_single_segment_time": 60000,
            "snr_thres": -100.0,
            "noise_frame_num_used_for_snr": 100,
            "decibel_thres": -100.0,
            "speech_noise_thres": 0.6,
            "fe_prior_thres": 0.0001,
            "silence_pdf_num": 1,
            "sil_pdf_ids": [0],
            "speech_noise_thresh_low": -0.1,
            "speech_noise_thresh_high": 0.3,
            "output_frame_probs": False,
            "frame_in_ms": 10,
            "frame_length_ms": 25,
        },
        "encoder": "FSMN",
        "encoder_conf": {
            "input_dim": 400,
            "input_affine_dim": 8,
            "fsmn_layers": 1,
            "linear_dim": 8,
            "proj_dim": 4,
            "lorder": 4,
            "rorder": 0,
            "lstride": 1,
            "rstride": 0,
            "output_affine_dim": 8,
            "output_dim": 2,
        },
        "frontend": "WavFrontendOnline",
        "frontend_conf": {
            "fs": 16000,
            "window": "hamming",
            "n_mels": 80,
            "frame_length": 25,
            "frame_shift": 10,
            "dither": 0.0,
            "lfr_m": 5,
            "lfr_n": 1,
        },
    }
    with open(os.path.join(d, "config.yaml"), "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    conf = dict(cfg["model_conf"])
    conf.update(cfg)
    torch.manual_seed(0)
    m = tables.model_classes.get("FsmnVADStreaming")(**conf)
    if energy_vad:
        # Hand-set weights: speech prob rises with mean log-mel energy (a crude energy VAD),
        # so a wav of tone/silence/tone gives deterministic segments.
        enc = m.encoder
        with torch.no_grad():
            for p in enc.parameters():
                p.zero_()
            # e = mean log-mel of the centre frame block (LFR 5 x 80 = 400 dims)
            enc.in_linear1.linear.weight[0, :] = 1.0 / 400
            # h0 = relu(e - T), h1 = relu(e - T - 1)  =>  h0 - h1 = clamp(e - T, 0, 1)
            enc.in_linear2.linear.weight[0, 0] = 1.0
            enc.in_linear2.linear.bias[0] = -THRESH_LOGMEL
            enc.in_linear2.linear.weight[1, 0] = 1.0
            enc.in_linear2.linear.bias[1] = -THRESH_LOGMEL - 1.0
            # FSMN block: x1=linear(x); x2=x1+conv(x1); relu(affine(x2)) -> pass channels 0,1
            for blk in enc.fsmn:
                blk.linear.linear.weight[0, 0] = 1.0
                blk.linear.linear.weight[1, 1] = 1.0
                blk.affine.linear.weight[0, 0] = 1.0
                blk.affine.linear.weight[1, 1] = 1.0
            enc.out_linear1.linear.weight[0, 0] = 1.0
            enc.out_linear1.linear.weight[0, 1] = -1.0
            # logits: silence = 4, speech = 8 * clamp(e - T, 0, 1); bounded so softmax never hits 0/1
            enc.out_linear2.linear.weight[1, 0] = 8.0
            enc.out_linear2.linear.bias[0] = 4.0
    save(m, d)


THRESH_LOGMEL = 13.0


def tiny_punc(d):
    punc_tokens = ["<blank>", "<s>", "</s>"] + CHARS + [c for c in "abcdefghijklmnopqrstuvwxyz"] + ["<unk>"]
    write_common(d, tokens=punc_tokens, mvn_dim=0, seg_dict=False)
    cfg = {
        "model": "CTTransformer",
        "model_conf": {
            "ignore_id": 0,
            "embed_unit": 32,
            "att_unit": 32,
            "dropout_rate": 0.1,
            "punc_list": ["<unk>", "_", "，", "。", "？", "、"],
            "punc_weight": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            "sentence_end_id": 3,
        },
        "encoder": "SANMEncoder",
        "encoder_conf": {
            "input_size": 32,
            "output_size": 32,
            "attention_heads": 2,
            "linear_units": 64,
            "num_blocks": 1,
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "attention_dropout_rate": 0.0,
            "input_layer": "pe",
            "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True,
            "kernel_size": 11,
            "sanm_shfit": 0,
            "selfattention_layer_type": "sanm",
            "padding_idx": 0,
        },
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>"},
    }
    m = build_and_save(d, cfg)
    with torch.no_grad():
        # never emit class 0 ("<unk>"), mostly "_" (no punctuation), so output looks like text
        m.decoder.weight.mul_(0.5)
        m.decoder.bias.copy_(torch.tensor([-30.0, 0.6, 0.0, 0.4, -0.5, -1.0]))
    save(m, d)


# ---------------------------------------------------------------- CAM++ speaker model
def tiny_campplus(d):
    """CAM++ (FunASR's CAMPPlus, 192-dim embeddings) for spk_model=: the release's fixed topology (FCM head with
    32 channels, 12/24/16 dense layers) with tiny widths and random weights, so speaker labels are arbitrary but
    deterministic. FunASR clusters only from ~15 s of speech up (>= 20 chunks of 1.5 s); random embeddings need
    a fixed count (preset_spk_num) to split."""
    os.makedirs(d, exist_ok=True)
    cfg = {
        "model": "CAMPPlus",
        "model_conf": {
            "feat_dim": 80,
            "embedding_size": 192,
            "growth_rate": 2,
            "bn_size": 2,
            "init_channels": 8,
            "config_str": "batchnorm-relu",
            "memory_efficient": True,
            "output_level": "segment",
        },
    }
    with open(os.path.join(d, "config.yaml"), "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    cj = {
        "framework": "pytorch",
        "task": "speaker-verification",
        "model": {"type": "funasr"},
        "pipeline": {"type": "funasr-pipeline"},
        "file_path_metas": {"init_param": "model.pt", "config": "config.yaml"},
    }
    with open(os.path.join(d, "configuration.json"), "w") as f:
        json.dump(cj, f, indent=2)
    torch.manual_seed(0)
    save(tables.model_classes.get("CAMPPlus")(**cfg["model_conf"]), d)


def build_all(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    tiny_seaco(os.path.join(out, "tiny_seaco_paraformer"))
    tiny_paraformer(os.path.join(out, "tiny_paraformer"))
    tiny_paraformer_streaming(os.path.join(out, "tiny_paraformer_streaming"))
    tiny_vad(os.path.join(out, "tiny_fsmn_vad"))
    tiny_punc(os.path.join(out, "tiny_ct_punc"))
    tiny_campplus(os.path.join(out, "campplus"))
