"""Tiny random-weight FunASR model folders (SeACo-Paraformer, Paraformer, streaming Paraformer, FSMN-VAD, CT-punc,
SenseVoice-Small, Fun-ASR-Nano),
built from FunASR's own registered classes so `funasr.AutoModel` loads them from disk like downloaded models.

The text they produce is garbage; loading, hotwords, timestamps, VAD splitting and batching run the real code.
Adapted from ../shared/tools/make_tiny_funasr_models.py (FunASR 1.4.x).
"""

import itertools
import json
import math
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


# ---------------------------------------------------------------- SenseVoiceSmall
# Vocabulary laid out like the release's chn_jpn_yue_eng_ko_spectok.bpe.model (25055 pieces): the ids that
# SenseVoiceSmall hard-codes (lid_int_dict, textnorm_int_dict, emo_dict: <|zh|>=24884 ... <|woitn|>=25017,
# <|EMO_UNKNOWN|>=25009 used by ban_emo_unk) are the real ones; the other tag ids are placeholders.
SV_VOCAB = 25055
SV_TAG_BEGIN = 24884
SV_TAGS = {
    24884: "<|zh|>",
    24885: "<|en|>",
    24888: "<|yue|>",
    24892: "<|ja|>",
    24896: "<|ko|>",
    24992: "<|nospeech|>",
    24993: "<|Speech|>",
    24994: "<|BGM|>",
    24995: "<|Applause|>",
    24996: "<|Laughter|>",
    24997: "<|Cry|>",
    24998: "<|Sneeze|>",
    24999: "<|Breath|>",
    25000: "<|Cough|>",
    25001: "<|HAPPY|>",
    25002: "<|SAD|>",
    25003: "<|ANGRY|>",
    25004: "<|NEUTRAL|>",
    25005: "<|FEARFUL|>",
    25006: "<|DISGUSTED|>",
    25007: "<|SURPRISED|>",
    25009: "<|EMO_UNKNOWN|>",
    25010: "<|Sing|>",
    25011: "<|Speech_Noise|>",
    25012: "<|Event_UNK|>",
    25013: "<|GBG|>",
    25016: "<|withitn|>",
    25017: "<|woitn|>",
}
SV_BPE = "chn_jpn_yue_eng_ko_spectok.bpe.model"
SV_D = 16  # encoder width
SV_LFR_DIM = 560  # 80 mel x lfr_m 7
# Crafted weights: hidden channel j carries query marker j, so CTC frames 0..3 (language / emotion / event /
# text-norm queries) decode to fixed tags -> text always starts "<|lang|><|NEUTRAL|><|Speech|><|withitn|woitn|>".
# (embedding indexes of SenseVoiceSmall.embed that light the channel, tag emitted)
SV_MARKERS = [
    ([0, 3], "<|zh|>"),
    ([4], "<|en|>"),
    ([7], "<|yue|>"),
    ([11], "<|ja|>"),
    ([12], "<|ko|>"),
    ([13], "<|nospeech|>"),
    ([1], "<|NEUTRAL|>"),
    ([2], "<|Speech|>"),
    ([14], "<|withitn|>"),
    ([15], "<|woitn|>"),
]  # language="auto" (embed 0) decodes as <|zh|>
SV_MARK_IN = [8 * j + 3 for j in range(len(SV_MARKERS))]  # input feature dims used as marker channels
SV_REF_IN = [80 * 3 + 4 * j + 1 for j in range(20)]  # feature dims zeroed by am.mvn: energy reference
SV_SIL_LOGMEL = 14.0  # LFR frames whose mean log-mel is below this decode as blank (silence -> no text)


def sv_pieces():
    """(piece, sentencepiece type) list: 0 <unk>, 1 <s>, 2 </s>, chars..., tags from SV_TAG_BEGIN."""
    normal = list(CHARS) + list("，。？！、")
    seen = set(normal)
    extra = (
        [chr(c) for c in range(0x4E00, 0xA000)]
        + [chr(c) for c in range(0x3041, 0x3097)]
        + [chr(c) for c in range(0x30A1, 0x30FB)]
        + list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,.?!'-%")
        + ["▁"]
        + ["▁" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    )
    for c in extra:
        if c not in seen:
            normal.append(c)
            seen.add(c)
    h = 0xAC00  # pad with Hangul syllables up to the first tag id
    while 3 + len(normal) < SV_TAG_BEGIN:
        normal.append(chr(h))
        h += 1
    pieces = [("<unk>", 2), ("<s>", 3), ("</s>", 3)] + [(p, 1) for p in normal[: SV_TAG_BEGIN - 3]]
    for i in range(SV_TAG_BEGIN, SV_VOCAB):
        pieces.append((SV_TAGS.get(i, f"<|SPECIAL_TOKEN_{i - SV_TAG_BEGIN}|>"), 4))  # 4 = USER_DEFINED
    return pieces


def write_sentencepiece(path, pieces):
    """Write a sentencepiece BPE ModelProto directly (no training): tags are user-defined symbols, so
    decode() prints them verbatim and encode() keeps them whole; no dummy '▁' prefix, so
    text2tokens(text)[4:] (SenseVoice's timestamp code) drops exactly the four leading tags."""
    from sentencepiece import sentencepiece_model_pb2 as sp_pb2

    m = sp_pb2.ModelProto()
    ts = m.trainer_spec
    ts.model_type = sp_pb2.TrainerSpec.BPE
    ts.vocab_size = len(pieces)
    ts.unk_id, ts.bos_id, ts.eos_id, ts.pad_id = 0, 1, 2, -1
    ns = m.normalizer_spec
    ns.name = "identity"
    ns.add_dummy_prefix = False
    ns.remove_extra_whitespaces = False
    ns.escape_whitespaces = True
    for i, (p, t) in enumerate(pieces):
        sp = m.pieces.add()
        sp.piece, sp.type, sp.score = p, t, (-float(i) if t == 1 else 0.0)
    with open(path, "wb") as f:
        f.write(m.SerializeToString())


def tiny_sensevoice(d, blank_bias=20.0, sil_gain=5.0, e_gain=4.0, e0=-0.4, text_gain=2.0, mark_gain=0.25):
    os.makedirs(d, exist_ok=True)
    pieces = sv_pieces()
    write_sentencepiece(os.path.join(d, SV_BPE), pieces)
    piece_id = {p: i for i, (p, _) in enumerate(pieces)}
    shift = " ".join([f"{-SV_SIL_LOGMEL:.1f}"] * SV_LFR_DIM)
    scale = " ".join("0.0" if i in SV_REF_IN else "0.25" for i in range(SV_LFR_DIM))
    with open(os.path.join(d, "am.mvn"), "w") as f:
        f.write(f"<Nnet>\n<Splice> {SV_LFR_DIM} {SV_LFR_DIM}\n[ 0 ]\n")
        f.write(f"<AddShift> {SV_LFR_DIM} {SV_LFR_DIM}\n<LearnRateCoef> 0 [ {shift} ]\n")
        f.write(f"<Rescale> {SV_LFR_DIM} {SV_LFR_DIM}\n<LearnRateCoef> 0 [ {scale} ]\n</Nnet>\n")
    cfg = {
        "encoder": "SenseVoiceEncoderSmall",
        "encoder_conf": {
            "output_size": SV_D,
            "attention_heads": 2,
            "linear_units": 32,
            "num_blocks": 2,
            "tp_blocks": 1,
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "attention_dropout_rate": 0.1,
            "input_layer": "pe",
            "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True,
            "kernel_size": 11,
            "sanm_shfit": 0,
            "selfattention_layer_type": "sanm",
        },
        "model": "SenseVoiceSmall",
        "model_conf": {"length_normalized_loss": True, "sos": 1, "eos": 2, "ignore_id": -1},
        "tokenizer": "SentencepiecesTokenizer",
        "tokenizer_conf": {"bpemodel": None, "unk_symbol": "<unk>", "split_with_space": True},
        "frontend": "WavFrontend",
        "frontend_conf": {
            "fs": 16000,
            "window": "hamming",
            "n_mels": 80,
            "frame_length": 25,
            "frame_shift": 10,
            "lfr_m": 7,
            "lfr_n": 6,
            "cmvn_file": None,
            "dither": 0.0,
        },
    }
    with open(os.path.join(d, "config.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg, f, allow_unicode=True, sort_keys=False)
    cj = {
        "framework": "pytorch",
        "task": "auto-speech-recognition",
        "model": {"type": "funasr"},
        "pipeline": {"type": "funasr-pipeline"},
        "file_path_metas": {
            "init_param": "model.pt",
            "config": "config.yaml",
            "tokenizer_conf": {"bpemodel": SV_BPE},
            "frontend_conf": {"cmvn_file": "am.mvn"},
        },
    }
    with open(os.path.join(d, "configuration.json"), "w") as f:
        json.dump(cj, f, indent=2)
    conf = dict(cfg["model_conf"])
    conf.update(cfg)
    conf.update(vocab_size=len(pieces), input_size=SV_LFR_DIM)  # vocab must match or the CTC is silently re-randomised
    torch.manual_seed(0)
    m = tables.model_classes.get("SenseVoiceSmall")(**conf)
    g = torch.Generator().manual_seed(0)
    D, nm = SV_D, len(SV_MARKERS)
    ns = nm + 1  # hidden: [0, nm) markers, nm silence, [ns, D) text
    enc = m.encoder
    with torch.no_grad():
        # query embeddings: one spike per marker channel
        m.embed.weight.zero_()
        for j, (idxs, _) in enumerate(SV_MARKERS):
            for i in idxs:
                m.embed.weight[i, SV_MARK_IN[j]] = 50.0
        # first block (560 -> D, no residual): output = v = Wv . LayerNorm(x) + b  (q, k, out, fsmn, ffn = 0)
        a0 = enc.encoders0[0].self_attn
        for p in (
            a0.linear_q_k_v.weight,
            a0.linear_q_k_v.bias,
            a0.linear_out.weight,
            a0.linear_out.bias,
            a0.fsmn_block.weight,
            enc.encoders0[0].feed_forward.w_2.weight,
            enc.encoders0[0].feed_forward.w_2.bias,
        ):
            p.zero_()
        wv = a0.linear_q_k_v.weight[2 * D : 3 * D]
        for j in range(nm):
            wv[j, SV_MARK_IN[j]] = mark_gain
        # silence channel: mean of the am.mvn-zeroed dims after LayerNorm is > 0 when the frame is quiet
        wv[nm, SV_REF_IN] = e_gain / len(SV_REF_IN)
        a0.linear_q_k_v.bias[2 * D + nm] = -e_gain * e0
        # text channels: random projections of the spectral change across the 7 stacked frames
        ws = torch.randn(D - ns, 7, 80, generator=g)
        ws = (ws - ws.mean(1, keepdim=True)).reshape(D - ns, SV_LFR_DIM) * (text_gain / math.sqrt(SV_LFR_DIM))
        ws[:, SV_MARK_IN + SV_REF_IN] = 0.0
        wv[ns:] = ws
        # remaining blocks: random, scaled to ~identity (residual + 1% perturbation)
        for layer in list(enc.encoders) + list(enc.tp_encoders):
            for p in (
                layer.self_attn.linear_q_k_v.weight[2 * D :],
                layer.self_attn.linear_q_k_v.bias[2 * D :],
                layer.self_attn.linear_out.weight,
                layer.self_attn.linear_out.bias,
                layer.feed_forward.w_2.weight,
                layer.feed_forward.w_2.bias,
            ):
                p.mul_(0.01)
        # CTC head: tags only from their marker channel, text pieces (CHARS, "，", "。") from the text
        # channels, blank (id 0) from bias + silence channel, every other piece never
        lo = m.ctc.ctc_lo
        lo.weight.zero_()
        lo.bias.fill_(-30.0)
        lo.bias[0] = blank_bias
        lo.weight[0, nm] = sil_gain
        for j, (_, tag) in enumerate(SV_MARKERS):
            lo.weight[piece_id[tag], j] = 40.0
            lo.bias[piece_id[tag]] = -40.0 * 2.8
        allowed = [piece_id[c] for c in CHARS]
        lo.weight[allowed, ns:] = torch.randn(len(allowed), D - ns, generator=g)
        lo.bias[allowed] = 0.0
        for p in "，。":
            lo.weight[piece_id[p], ns:] = torch.randn(D - ns, generator=g)
            lo.bias[piece_id[p]] = -1.0
    save(m, d)


# ---------------------------------------------------------------- Fun-ASR-Nano
NANO_D = 32  # audio encoder width == LLM hidden size
NANO_LLM_DIR = "Qwen3-0.6B"  # sub-folder name used by the release (config + tokenizer only; tiny here)
NANO_PHRASE = "北京的天气很好。"  # what the tiny LLM always answers
QWEN_PAT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def write_qwen_tokenizer(d, vocab_size=2000):
    """Byte-level BPE like Qwen2/3 (tokenizers lib), with <|endoftext|> <|im_start|> <|im_end|> specials and
    <think> </think>; saved as tokenizer.json + tokenizer_config.json (AutoTokenizer -> Qwen2Tokenizer)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    os.makedirs(d, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PAT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    corpus = [
        " ".join(CHARS),
        "".join(CHARS),
        "You are a helpful assistant.",
        "system\nuser\nassistant\n",
        "请结合上下文信息，更加准确地完成语音转写任务。如果没有相关信息，我们会留空。\n\n\n**上下文信息：**\n\n\n"
        "热词列表：[]\n",
        "语音转写成中文，不进行文本规整：",
        "语音转写：",
        NANO_PHRASE,
        "hello world, this is a test.",
    ] * 3
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(corpus, trainer)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tok.add_tokens([AddedToken(s, special=False, normalized=False) for s in ["<think>", "</think>"]])
    tok.save(os.path.join(d, "tokenizer.json"))
    added = {
        str(tok.token_to_id(s)): {
            "content": s,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": s in specials,
        }
        for s in specials + ["<think>", "</think>"]
    }
    tc = {
        "tokenizer_class": "Qwen2Tokenizer",
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "errors": "replace",
        "model_max_length": 4096,
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": False,
    }
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, indent=2, ensure_ascii=False)


def tiny_fun_asr_nano(d):
    """FunASRNano: SenseVoiceEncoderSmall -> Transformer adaptor -> Qwen3ForCausalLM built by
    AutoConfig/AutoModelForCausalLM.from_config(Qwen3-0.6B/config.json); weights come from model.pt.
    Without a CTC decoder (the recipe's with_ctc variant needs torchaudio for FunASR's forced alignment, which
    this project never installs), so no timestamps: the engine uses VAD segment times."""
    from transformers import AutoTokenizer, Qwen3Config

    os.makedirs(d, exist_ok=True)
    llm_dir = os.path.join(d, NANO_LLM_DIR)
    write_qwen_tokenizer(llm_dir)
    hf_tok = AutoTokenizer.from_pretrained(llm_dir)
    eot, im_end = hf_tok.convert_tokens_to_ids("<|endoftext|>"), hf_tok.convert_tokens_to_ids("<|im_end|>")
    Qwen3Config(
        vocab_size=len(hf_tok),
        hidden_size=NANO_D,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=4096,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=eot,
        eos_token_id=im_end,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
    ).save_pretrained(llm_dir)
    cfg = {
        "model": "FunASRNano",
        "model_conf": {"lsm_weight": 0.1, "length_normalized_loss": True},
        "audio_encoder": "SenseVoiceEncoderSmall",
        "audio_encoder_conf": {
            "output_size": NANO_D,
            "attention_heads": 2,
            "linear_units": 64,
            "num_blocks": 2,
            "tp_blocks": 1,
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "attention_dropout_rate": 0.1,
            "input_layer": "pe",
            "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True,
            "kernel_size": 11,
            "sanm_shfit": 0,
            "selfattention_layer_type": "sanm",
            "freeze": True,
        },
        "llm": "Qwen3-0.6b",
        "llm_conf": {
            "hub": "hf",
            "freeze": True,
            "llm_dtype": "fp32",
            "init_param_path": NANO_LLM_DIR,
            "use_lora": False,
        },
        "audio_adaptor": "Transformer",
        "audio_adaptor_conf": {
            "downsample_rate": 1,
            "use_low_frame_rate": False,
            "ffn_dim": 64,
            "llm_dim": NANO_D,
            "encoder_dim": NANO_D,
            "n_layer": 1,
            "attention_heads": 2,
            "freeze": True,
        },
        "frontend": "WavFrontend",
        "frontend_conf": {
            "fs": 16000,
            "window": "hamming",
            "n_mels": 80,
            "frame_length": 25,
            "frame_shift": 10,
            "lfr_m": 7,
            "lfr_n": 6,
            "cmvn_file": None,
            "dither": 0.0,
        },
        "tokenizer": "HuggingfaceTokenizer",
        "tokenizer_conf": {"init_param_path": NANO_LLM_DIR},
        "dataset_conf": {"do_think": False, "sys_prompt": True},
    }
    metas = {
        "init_param": "model.pt",
        "config": "config.yaml",
        "tokenizer_conf": {"init_param_path": NANO_LLM_DIR},
        "llm_conf": {"init_param_path": NANO_LLM_DIR},
    }
    with open(os.path.join(d, "config.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg, f, allow_unicode=True, sort_keys=False)
    cj = {
        "framework": "pytorch",
        "task": "auto-speech-recognition",
        "model": {"type": "funasr"},
        "pipeline": {"type": "funasr-pipeline"},
        "file_path_metas": metas,
    }
    with open(os.path.join(d, "configuration.json"), "w") as f:
        json.dump(cj, f, indent=2)

    conf = json.loads(json.dumps(cfg))  # as AutoModel.build_model sees it (paths made absolute)
    conf["llm_conf"]["init_param_path"] = llm_dir
    conf.update(conf.pop("model_conf"))
    conf.update(input_size=SV_LFR_DIM, vocab_size=len(hf_tok))
    torch.manual_seed(0)
    m = tables.model_classes.get("FunASRNano")(**conf)
    # LLM: random weights with attention/MLP outputs scaled ~0, so the residual stream is the token embedding
    # and greedy decoding follows a bigram chain: last prompt token ("\n" or "\n\n") -> NANO_PHRASE -> <|im_end|>
    llm = m.llm
    with torch.no_grad():
        for layer in llm.model.layers:
            layer.self_attn.o_proj.weight.mul_(1e-3)
            layer.mlp.down_proj.weight.mul_(1e-3)
        emb = llm.model.embed_tokens.weight
        emb.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(1))
        starts = [hf_tok.encode("\n")[-1], hf_tok.encode("\n\n")[-1]]
        phrase = hf_tok.encode(NANO_PHRASE)
        assert len(set(phrase)) == len(phrase) and not set(phrase) & set(starts), phrase
        lm_head = llm.lm_head.weight
        lm_head.zero_()
        for a, b in [(s, phrase[0]) for s in starts] + list(itertools.pairwise(phrase)) + [(phrase[-1], im_end)]:
            lm_head[b] += 4.0 * emb[a] / emb[a].norm()
    save(m, d)


def build_all(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    tiny_seaco(os.path.join(out, "tiny_seaco_paraformer"))
    tiny_paraformer(os.path.join(out, "tiny_paraformer"))
    tiny_paraformer_streaming(os.path.join(out, "tiny_paraformer_streaming"))
    tiny_vad(os.path.join(out, "tiny_fsmn_vad"))
    tiny_punc(os.path.join(out, "tiny_ct_punc"))


def retag_sensevoice(d, swaps: dict[str, str]) -> None:
    """Make a tiny SenseVoice emit other tags: the CTC rows of each pair of tags in `swaps` are exchanged in
    model.pt, e.g. {"<|NEUTRAL|>": "<|HAPPY|>"} -> every clip is tagged <|HAPPY|> where it was <|NEUTRAL|>."""
    piece_id = {p: i for i, (p, _) in enumerate(sv_pieces())}
    path = os.path.join(d, "model.pt")
    state = torch.load(path, map_location="cpu")
    for old, new in swaps.items():
        a, b = piece_id[old], piece_id[new]
        for key in ("ctc.ctc_lo.weight", "ctc.ctc_lo.bias"):
            rows = state[key]
            rows[[a, b]] = rows[[b, a]].clone()
    torch.save(state, path)


def build_sensevoice(d) -> None:
    """A tiny SenseVoice whose clips are tagged happy, with laughter: tags the page shows as badges."""
    tiny_sensevoice(d)
    retag_sensevoice(d, {"<|NEUTRAL|>": "<|HAPPY|>", "<|Speech|>": "<|Laughter|>"})
