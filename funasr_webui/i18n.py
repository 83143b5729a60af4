"""Every word the web page shows, in English and Chinese.

One table serves both sides of the page:
- static labels go to Gradio's i18n (``gradio_i18n``); the browser picks the language from its own locale
  or from the page's language switch, without a round trip;
- messages built on the server (results, table headers) come from ``t(key, lang)`` with the
  language the page sends along with each request; errors come from the error catalogue (messages.py).
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.i18n import I18nData

from .messages import LANGS, lang_of

__all__ = ["LANGS", "MESSAGES", "gradio_i18n", "lang_of", "t", "ui"]

# key: (English, Chinese). Placeholders in braces are filled by t(..., **values) or, for static labels,
# once at start-up from the settings (gradio_i18n(**values)).
MESSAGES: dict[str, tuple[str, str]] = {
    # ---- header
    "app_title": ("FunASR WebUI · Speech to text", "FunASR WebUI · 语音转文字"),
    "app_subtitle": (
        "Runs entirely on this computer — recordings and transcripts never leave it.",
        "完全在本机运行——录音和文字都不会离开这台电脑。",
    ),
    "lang_switch": ("Language", "界面语言"),
    "engine_line": (
        "**Engine:** {engine} · **Model:** {model} · **Device:** {device}",
        "**识别引擎**：{engine} · **模型**：{model} · **运行设备**：{device}",
    ),
    "notice_embedded": (
        "**The built-in offline engine is standing in for Paraformer.** The Paraformer models (the most "
        "accurate for Chinese) are not installed, so Whisper base is used: results, especially in Chinese, "
        "are less accurate. To get Paraformer, run `./run.sh download` on a computer with internet access, "
        "or copy the model folders into `models/` (see `models/README.md`), then restart the app.",
        "**当前由内置离线引擎代替 Paraformer。** 未找到 Paraformer 模型（中文识别最准确），现使用 Whisper base，"
        "识别准确率（尤其是中文）会低一些。获取 Paraformer：在可以上网的电脑上运行 `./run.sh download`，"
        "或把模型文件夹复制到 `models/` 目录（见 `models/README.md`），然后重启本程序。",
    ),
    "notice_reason": ("Reason: {reason}", "原因：{reason}"),
    "device_cpu": ("CPU", "CPU"),
    "device_cuda": ("GPU ({name})", "GPU（{name}）"),
    "toast_warning": ("Please note", "请注意"),
    "toast_info": ("Info", "提示"),
    # ---- tabs
    "tab_single": ("Single file", "单文件识别"),
    "tab_batch": ("Batch", "批量处理"),
    "tab_mic": ("Microphone", "实时录音"),
    "tab_history": ("History", "历史记录"),
    "tab_system": ("System", "系统信息"),
    # ---- shared options
    "hotwords": ("Hotwords (optional)", "热词（可选）"),
    "hotwords_info": (
        "Names and terms the recognizer should get right, one per line, at most {max_hotwords}.",
        "需要准确识别的人名、术语等，每行一个，最多 {max_hotwords} 个。",
    ),
    "hotwords_placeholder": ("e.g.\nDAMO Academy\nQ3 budget", "例如：\n达摩院\n季度预算"),
    "itn": ("Write numbers as digits", "数字写成阿拉伯数字"),
    "itn_info": (
        "“two thousand twenty-four” becomes 2024. Turn off to keep numbers as spoken.",
        "例如「二零二四年」写成「2024年」。关闭则保留口语写法。",
    ),
    "language": ("Spoken language", "说话语种"),
    "language_info": (
        "Auto-detect suits most recordings; choose the language if the result comes out in the wrong one.",
        "一般选「自动检测」即可；如果识别成了别的语种，请手动选择。",
    ),
    "lang_auto": ("Auto-detect", "自动检测"),
    "speakers": ("Identify speakers", "区分说话人"),
    "speakers_info": (
        "Label who said what (发言人1, 发言人2 …; rename them later in History). Auto finds how many people "
        "speak; or choose the number if you know it. Off is fastest.",
        "标出每句话是谁说的（发言人1、发言人2……，之后可在历史记录中改名）。选「自动」会自行判断人数；"
        "知道人数时直接选择人数更准。关闭时最快。",
    ),
    "speakers_off": ("Off", "关闭"),
    "speakers_auto": ("Auto (find how many)", "自动（判断人数）"),
    # ---- single file and microphone results
    "upload": ("Audio or video file", "音频或视频文件"),
    "upload_hint": (
        "Drag a file onto the box or click it to choose one. MP3, WAV, M4A, FLAC, MP4, MOV and most other "
        "audio and video formats work, up to {max_upload_mb} MB.",
        "把文件拖到上面的框里，或点击选择文件。支持 MP3、WAV、M4A、FLAC、MP4、MOV 等常见音视频格式，"
        "单个文件最大 {max_upload_mb} MB。",
    ),
    "start": ("Start", "开始识别"),
    "rerun": ("Run again anyway", "仍然重新识别"),
    "status_single_idle": ("Choose a file, then press **Start**.", "选择文件后点击 **开始识别**。"),
    "status_mic_idle": (
        "Press **Record**, speak, and press **Stop** when you are done: recognition starts by itself.",
        "点击 **录制** 开始录音，说完后点击 **停止**，随即自动识别。",
    ),
    "transcript": ("Transcript", "识别结果"),
    "segments": ("Sentences with timestamps", "分句与时间戳"),
    "downloads": ("Download the transcript", "下载识别结果"),
    "downloads_hint": (
        "TXT: plain text (speaker turns when speakers are identified) · SRT / VTT: subtitles for video players · "
        "JSON: every detail, for other programs · MD: Markdown · DOCX: minutes for Word (title, date, "
        "participants, turns).",
        "TXT：纯文本（区分说话人时按发言顺序） · SRT / VTT：视频字幕 · JSON：完整信息，供其他程序使用 · "
        "MD：Markdown · DOCX：Word 会议纪要（标题、日期、参会人、发言）。",
    ),
    "col_start": ("Start", "开始"),
    "col_end": ("End", "结束"),
    "col_text": ("Text", "文本"),
    "col_speaker": ("Speaker", "说话人"),
    "stats": (
        "Audio length **{duration}** · processing time **{elapsed}** · speed **{speed}× real time**",
        "音频时长 **{duration}** · 处理用时 **{elapsed}** · 速度 **{speed} 倍实时**",
    ),
    "msg_working": ("Recognizing…", "正在识别…"),
    "msg_done": ("Done. The transcript is saved in History.", "完成，结果已保存到历史记录。"),
    "msg_done_unsaved": (
        "Done, but the transcript could not be saved to History ({error}). Download it now.",
        "完成，但结果未能保存到历史记录（{error}），请立即下载。",
    ),
    "msg_no_speech": ("Done, but no speech was found in this recording.", "完成，但录音中没有检测到说话声。"),
    "msg_previous": (
        "This file was already transcribed with the same settings on {when}; here is that result from History. "
        "Press **Run again anyway** to recognize it again.",
        "这个文件已在 {when} 用相同设置识别过，下面是历史记录中的结果。如需重新识别，请点击 **仍然重新识别**。",
    ),
    "msg_no_file": ("Please choose a file first.", "请先选择文件。"),
    "msg_unexpected": (
        "Something went wrong ({error}). Please try again; the details are in the server log.",
        "出现错误（{error}），请重试；详细信息见服务器日志。",
    ),
    # ---- batch
    "batch_files": ("Audio or video files", "音频或视频文件"),
    "batch_hint": (
        "Select or drop up to {max_batch_files} files at once. Each finished file is saved in History; "
        "a file that fails is marked with the reason and the others carry on.",
        "一次最多选择或拖入 {max_batch_files} 个文件。每个文件的结果都会保存到历史记录；"
        "某个文件失败时会标明原因，其余文件继续处理。",
    ),
    "batch_format": ("File format inside the zip", "压缩包内的文件格式"),
    "batch_start": ("Start batch", "开始批量识别"),
    "batch_results": ("Results", "结果"),
    "batch_zip": ("Download all results (zip)", "下载全部结果（zip）"),
    "status_batch_idle": ("Choose files, then press **Start batch**.", "选择文件后点击 **开始批量识别**。"),
    "col_file": ("File", "文件"),
    "col_duration": ("Duration", "时长"),
    "col_status": ("Status", "状态"),
    "col_preview": ("Text", "文本预览"),
    "col_elapsed": ("Processing time", "处理用时"),
    "st_waiting": ("waiting", "等待中"),
    "st_running": ("working…", "识别中…"),
    "st_done": ("done", "完成"),
    "st_failed": ("failed: {reason}", "失败：{reason}"),
    "st_interrupted": (
        "interrupted: the server stopped before this file finished",
        "已中断：服务在识别完成前停止了",
    ),
    "msg_no_files": ("Please choose files first.", "请先选择文件。"),
    "msg_too_many_files": (
        "Too many files: {count} chosen, at most {max} at a time. Please split them into smaller batches.",
        "文件过多：选择了 {count} 个，一次最多 {max} 个。请分成几批处理。",
    ),
    "msg_batch_progress": ("File {index} of {total}: {name}", "第 {index}/{total} 个文件：{name}"),
    "msg_batch_summary": (
        "Finished {total} files: {done} done, {failed} failed.",
        "已处理 {total} 个文件：{done} 个完成，{failed} 个失败。",
    ),
    "zip_failed_list": ("Files that failed", "失败的文件"),
    "batch_queue_hint": (
        "This server hands batches to the work queue: worker processes, on this or other machines, transcribe the "
        "files. The table fills in as they finish (you may close the page: every result is saved in History).",
        "此服务器把批量文件交给任务队列：由本机或其他机器上的工作进程识别。表格会随完成情况更新"
        "（可以关闭页面：所有结果都会保存到历史记录）。",
    ),
    "st_queued": ("queued for a worker", "排队等待工作进程"),
    "msg_record_gone": ("its record is no longer in History", "其记录已不在历史记录中"),
    "msg_batch_queued": (
        "{total} files on the work queue: {done} done, {failed} failed, {waiting} waiting for workers.",
        "任务队列中的 {total} 个文件：{done} 个完成，{failed} 个失败，{waiting} 个等待工作进程。",
    ),
    "msg_no_workers": (
        "No worker is running: the files wait until one starts (python -m funasr_webui worker).",
        "没有正在运行的工作进程：文件会等待，直到有工作进程启动（python -m funasr_webui worker）。",
    ),
    # ---- microphone
    "mic": ("Recording", "录音"),
    "mic_start": ("Recognize again", "重新识别"),
    "mic_hint": (
        "The browser asks once for permission to use the microphone. Change the options below and press "
        "**Recognize again** to redo the last recording. Recordings are saved in History with the source "
        "“microphone”.",
        "首次录音时浏览器会请求使用麦克风的权限。修改下方选项后点击 **重新识别** 可再次识别刚才的录音。"
        "录音结果会保存到历史记录，来源为「麦克风」。",
    ),
    "msg_no_recording": ("Please record something first.", "请先录音。"),
    # ---- microphone: live dictation
    "mic_mode": ("How to use the microphone", "使用方式"),
    "mic_mode_record": ("Record, then recognize", "先录音，后识别"),
    "mic_mode_live": ("Live dictation", "实时听写"),
    "mic_mode_hint": (
        "Record, then recognize: the text comes after you stop, most accurate. Live dictation: the text appears "
        "while you speak, and each sentence is finished (punctuation, digits, hotwords) when you pause.",
        "先录音，后识别：停止录音后出结果，最准确。实时听写：边说边出文字，每说完一句稍作停顿，"
        "这句话即定稿（加标点、转数字、应用热词）。",
    ),
    "live_mic": ("Live microphone", "实时听写麦克风"),
    "live_hint": (
        "Press **Record** and speak; pause briefly between sentences. The line after ▌ is the sentence still "
        "being spoken and may change. Press **Stop** to end: the whole dictation is saved in History with the "
        "source “microphone”. The options below apply from the next **Record**.",
        "点击 **录制** 后开始说话，句与句之间稍作停顿。▌ 后面是正在说的句子，还可能变化。点击 **停止** 结束，"
        "整段听写会保存到历史记录，来源为「麦克风」。修改下方选项后，从下一次 **录制** 开始生效。",
    ),
    "status_live_idle": (
        "Press **Record** and start speaking: the text appears here as you talk.",
        "点击 **录制** 后开始说话，文字会随说随显示在这里。",
    ),
    "status_live_listening": (
        "● Listening… {duration} · {count} sentences finished",
        "● 正在听写… {duration} · 已定稿 {count} 句",
    ),
    "status_live_behind": (
        "recognition is {behind} behind, catching up",
        "识别落后 {behind}，正在追赶",
    ),
    "status_live_dropped": (
        "{dropped} of audio dropped: it arrived faster than it can be heard",
        "已丢弃 {dropped} 音频：到达速度超过实时",
    ),
    "status_live_finishing": ("Finishing the last sentence and saving…", "正在完成最后一句并保存…"),
    "msg_live_saved": ("Dictation ended and saved in History (#{id}).", "听写已结束，已保存到历史记录（#{id}）。"),
    "msg_live_nothing": (
        "Dictation ended. No speech was heard, so nothing was saved.",
        "听写已结束。没有检测到说话声，因此没有保存记录。",
    ),
    "msg_live_unsaved": (
        "Dictation ended, but it could not be saved to History. Download the transcript now.",
        "听写已结束，但未能保存到历史记录，请立即下载识别结果。",
    ),
    # ---- history
    "hist_search": ("Search the text", "搜索文字内容"),
    "hist_search_placeholder": ("Words from the transcript, e.g. budget", "输入识别结果中的词语，例如：预算"),
    "hist_from": ("From date", "开始日期"),
    "hist_to": ("To date", "结束日期"),
    "hist_engine": ("Engine", "识别引擎"),
    "hist_source": ("Source", "来源"),
    "hist_source_info": ("Or type a file name", "也可输入文件名"),
    "hist_speaker": ("Speaker", "说话人"),
    "hist_speaker_info": ("Only transcripts where this named person speaks", "只看有此人发言的记录"),
    "hist_speakers": ("Speakers — type a name over 发言人1 / Speaker 1, then save", "说话人——直接改名，然后保存"),
    "hist_speakers_hint": (
        "Names are kept with this transcript: its text, downloads and exports use them from then on. "
        "Clear a name to get the default back.",
        "名字保存在这条记录中，之后的文本、下载和导出都会使用新名字。清空名字即恢复默认名称。",
    ),
    "hist_speakers_save": ("Save names", "保存名字"),
    "hist_speakers_none": (
        "No speakers in this transcript (choose **Identify speakers** when transcribing).",
        "这条记录没有区分说话人（识别时选择 **区分说话人**）。",
    ),
    "col_label": ("Label", "标签"),
    "col_name": ("Name", "名字"),
    "msg_speakers_saved": ("Speaker names saved.", "说话人名字已保存。"),
    "hist_status": ("Result", "结果"),
    "filter_all": ("All", "全部"),
    "src_microphone": ("Microphone", "麦克风"),
    "src_api": ("API", "API"),
    "src_websocket": ("FunASR WebSocket", "FunASR WebSocket"),
    "status_done": ("Done", "完成"),
    "status_failed": ("Failed", "失败"),
    "status_interrupted": ("Interrupted", "已中断"),
    "hist_search_btn": ("Search", "搜索"),
    "hist_last7": ("Last 7 days", "最近 7 天"),
    "hist_clear": ("Clear filters", "清除筛选"),
    "hist_table": ("Transcripts, newest first — click a row to open it", "识别记录（最新在前）——点击某一行查看详情"),
    "col_id": ("No.", "编号"),
    "col_time": ("Time", "时间"),
    "col_source": ("Source", "来源"),
    "hist_prev": ("◀ Previous page", "◀ 上一页"),
    "hist_next": ("Next page ▶", "下一页 ▶"),
    "hist_page": ("Page {page} of {pages} · {total} transcripts", "第 {page} / {pages} 页 · 共 {total} 条"),
    "hist_page_more": ("Page {page} · more than {total} transcripts", "第 {page} 页 · 超过 {total} 条"),
    "hist_empty": ("No transcripts match.", "没有符合条件的记录。"),
    "hist_detail": ("Selected transcript", "所选记录"),
    "hist_detail_idle": (
        "Click a row in the table above to see the transcript here.",
        "点击上方表格中的一行，在这里查看详情。",
    ),
    "hist_audio": ("Recording", "录音回放"),
    "hist_delete": ("Delete this transcript", "删除这条记录"),
    "hist_delete_confirm": (
        "Delete this transcript for good? This cannot be undone.",
        "确定永久删除这条记录吗？删除后无法恢复。",
    ),
    "confirm_delete": ("Yes, delete", "确认删除"),
    "cancel": ("Cancel", "取消"),
    "msg_deleted": ("Transcript deleted.", "记录已删除。"),
    "msg_select_first": ("Select a transcript in the table first.", "请先在表格中选择一条记录。"),
    "msg_bad_date": ("Dates must look like 2024-05-31.", "日期格式应为 2024-05-31。"),
    "msg_record_failed": ("This file could not be transcribed: {error}", "这个文件识别失败：{error}"),
    "msg_record_interrupted": (
        "Interrupted: the server stopped (crash, power cut or restart) before this transcription finished. "
        "Transcribe the file again.",
        "已中断：识别完成前服务停止了（崩溃、断电或重启）。请重新识别这个文件。",
    ),
    "hist_export_title": ("Export or clean up", "导出与清理"),
    "hist_export_format": ("Export format", "导出格式"),
    "hist_export": ("Export the transcripts found", "导出当前筛选结果"),
    "hist_export_file": ("Exported file", "导出的文件"),
    "hist_export_hint": (
        "Exports every transcript that matches the search and filters above, not only this page.",
        "导出符合上方搜索和筛选条件的全部记录，而不只是当前这一页。",
    ),
    "fmt_json": ("JSON (every field)", "JSON（全部字段）"),
    "fmt_csv": ("CSV (opens in Excel)", "CSV（可用 Excel 打开）"),
    "fmt_zip-txt": ("ZIP of TXT files", "ZIP（TXT 文本）"),
    "fmt_zip-srt": ("ZIP of SRT subtitles", "ZIP（SRT 字幕）"),
    "fmt_zip-vtt": ("ZIP of VTT subtitles", "ZIP（VTT 字幕）"),
    "fmt_zip-json": ("ZIP of JSON files", "ZIP（JSON 文件）"),
    "fmt_zip-md": ("ZIP of Markdown files", "ZIP（Markdown 文件）"),
    "fmt_zip-docx": ("ZIP of Word documents (DOCX)", "ZIP（Word 文档 DOCX）"),
    "msg_export_empty": ("Nothing to export: no transcript matches.", "没有可导出的内容：没有符合条件的记录。"),
    "msg_exported": ("Exported {count} transcripts.", "已导出 {count} 条记录。"),
    "hist_purge_days": ("Delete transcripts older than (days)", "删除早于多少天的记录"),
    "hist_purge": ("Delete old transcripts", "清理旧记录"),
    "hist_purge_confirm": (
        "Delete every transcript older than {days} days? This cannot be undone.",
        "确定删除 {days} 天以前的所有记录吗？删除后无法恢复。",
    ),
    "msg_purged": ("Deleted {count} transcripts older than {days} days.", "已删除 {count} 条 {days} 天以前的记录。"),
    "msg_bad_days": ("Enter a number of days, 0 or more.", "请输入大于或等于 0 的天数。"),
    "detail_line": (
        "**{source}** · {time} · {duration} · engine {engine} ({model}) on {device} · language {language} · "
        "digits {itn} · hotwords: {hotwords}",
        "**{source}** · {time} · 时长 {duration} · 引擎 {engine}（{model}），设备 {device} · 语种 {language} · "
        "数字转写 {itn} · 热词：{hotwords}",
    ),
    "on": ("on", "开"),
    "off": ("off", "关"),
    "none": ("none", "无"),
    # ---- system
    "sys_refresh": ("Refresh", "刷新"),
    "sys_free": ("Free GPU memory", "释放 GPU 显存"),
    "sys_table": ("About this computer and the recognizer", "本机与识别引擎信息"),
    "sys_hint": (
        "“Free GPU memory” returns memory the recognizer keeps cached between jobs; use it if other programs "
        "on this computer need the GPU.",
        "「释放 GPU 显存」会归还识别引擎在任务之间缓存的显存；当本机其他程序需要使用 GPU 时可以点击。",
    ),
    "col_item": ("Item", "项目"),
    "col_value": ("Value", "值"),
    "sys_engine": ("Engine", "识别引擎"),
    "sys_model": ("Model", "模型"),
    "sys_model_path": ("Model folder", "模型文件夹"),
    "sys_vad_model": ("Speech detection (VAD) model", "语音检测（VAD）模型"),
    "sys_punc_model": ("Punctuation model", "标点模型"),
    "sys_device": ("Device", "运行设备"),
    "sys_compute": ("Precision", "计算精度"),
    "sys_notice": ("Note", "提示"),
    "sys_torch": ("PyTorch version", "PyTorch 版本"),
    "sys_cuda": ("CUDA version", "CUDA 版本"),
    "sys_gpu": ("GPU", "GPU"),
    "sys_gpu_mem": ("GPU memory used / total", "GPU 显存 已用 / 总量"),
    "sys_gpu_reserved": ("GPU memory held by the recognizer", "识别引擎占用的显存"),
    "sys_cpu": ("CPU cores", "CPU 核心数"),
    "sys_ram": ("Memory (RAM) used / total", "内存 已用 / 总量"),
    "sys_python": ("Python version", "Python 版本"),
    "sys_gradio": ("Gradio version", "Gradio 版本"),
    "sys_https": ("HTTPS", "HTTPS"),
    "sys_https_off": (
        "off: browsers allow the microphone only on this computer (localhost); start with --ssl-self-signed",
        "未开启：浏览器只在本机（localhost）允许使用麦克风；用 --ssl-self-signed 启动即可",
    ),
    "sys_https_on": (
        "on, {kind} for {names} (valid until {until})",
        "已开启，{kind}，适用于 {names}（有效期至 {until}）",
    ),
    "sys_https_self_signed": ("self-signed certificate", "自签名证书"),
    "sys_https_certificate": ("certificate", "证书"),
    "sys_funasr_ws": ("FunASR WebSocket listener", "FunASR WebSocket 服务"),
    "sys_funasr_ws_off": ("off (start with --funasr-ws-port 10095)", "未开启（用 --funasr-ws-port 10095 启动）"),
    "sys_funasr_ws_on": ("{url}: {now} of at most {cap} connections now", "{url}：当前 {now} 个连接，最多 {cap} 个"),
    "sys_hist_count": ("History: transcripts (done / failed)", "历史记录：条数（完成 / 失败）"),
    "sys_hist_hours": ("History: hours of audio", "历史记录：音频总时长（小时）"),
    "sys_hist_size": ("History: database size", "历史记录：数据库大小"),
    "sys_hist_path": ("History: database file", "历史记录：数据库文件"),
    "sys_work_queue": ("Work queue", "任务队列"),
    "sys_queue_line": (
        "{queued} queued, {running} running, {done} done, {failed} failed · {workers} worker(s) live{names}",
        "排队 {queued} · 进行中 {running} · 完成 {done} · 失败 {failed} · 在线工作进程 {workers} 个{names}",
    ),
    "sys_no_gpu": ("none (running on the CPU)", "无（使用 CPU 运行）"),
    "sys_not_installed": ("not available", "不可用"),
    "sys_torch_unloaded": (
        "{version} (installed, not loaded: the embedded engine does not use it)",
        "{version}（已安装，未加载：内置引擎不需要它）",
    ),
    "sys_gpu_count": ("{n} CUDA device(s) (seen by CTranslate2)", "{n} 个 CUDA 设备（CTranslate2 检测）"),
    "msg_gpu_freed": (
        "GPU cache freed: {before} → {after} held by the recognizer.",
        "已释放 GPU 缓存：{before} → {after}。",
    ),
    "msg_no_gpu": ("No GPU is in use, so there is nothing to free.", "当前没有使用 GPU，无需释放。"),
    # ---- quality checks (QA tab, and its filter on the History tab)
    "tab_qa": ("Quality checks", "质检"),
    "qa_intro": (
        "Rules check **every** transcription when it is saved (page, batch, microphone, API, CLI, `ingest`). "
        "A **forbidden** rule flags each time one of its phrases is said; a **required** rule flags a call where "
        "none of its phrases is said (in its time window). Punctuation and spaces are ignored, and numbers are "
        "matched as spoken and as written.",
        "规则会在**每一次**识别结果保存时自动检查（单文件、批量、麦克风、API、命令行、`ingest`）。"
        "**禁用语**规则：通话中每说一次其中的词就记一次；**必说语**规则：通话中（在指定时间段内）一个词都没说就记一次“缺失”。"
        "匹配时忽略标点和空格，数字按读法和写法都能匹配。",
    ),
    "qa_rules": ("Rules — click a row to edit it", "规则——点击某一行进行编辑"),
    "qa_col_name": ("Name", "名称"),
    "qa_col_kind": ("Kind", "类型"),
    "qa_col_phrases": ("Phrases", "词语"),
    "qa_col_window": ("Time window", "时间段"),
    "qa_col_speaker": ("Speaker", "说话人"),
    "qa_col_enabled": ("On", "启用"),
    "qa_col_hits": ("Hits", "命中"),
    "qa_col_calls": ("Calls", "通话数"),
    "qa_col_rule": ("Rule", "规则"),
    "qa_col_phrase": ("Phrase", "词语"),
    "qa_col_rules": ("Rules hit", "命中规则"),
    "qa_kind_forbidden": ("forbidden", "禁用语"),
    "qa_kind_required": ("required", "必说语"),
    "qa_kind_missing": ("missing", "缺失"),
    "qa_whole_call": ("whole call", "整通"),
    "qa_anyone": ("anyone", "任何人"),
    "qa_speaker_n": ("speaker {n}", "第 {n} 位说话人"),
    "qa_yes": ("yes", "是"),
    "qa_no": ("no", "否"),
    "qa_edit": ("Rule", "编辑规则"),
    "qa_name": ("Name", "名称"),
    "qa_name_info": ("Shown in reports, e.g. greeting", "显示在报告中，例如：开场问候"),
    "qa_kind": ("Kind", "类型"),
    "qa_kind_info": (
        "forbidden: flag each time a phrase is said · required: flag a call that says none of them",
        "禁用语：每说一次记一次 · 必说语：一个都没说则记一次",
    ),
    "qa_phrases": ("Phrases (one per line)", "词语（每行一个）"),
    "qa_phrases_info": ("Any of them counts, e.g. 您好 and 你好", "任一词语都算，例如“您好”和“你好”"),
    "qa_window": ("Time window, seconds (optional)", "时间段，秒（可选）"),
    "qa_window_info": (
        "from, to: 0, 15 = the first 15 s; -30, 0 = the last 30 s; empty = the whole call",
        "起, 止：0, 15 = 前 15 秒；-30, 0 = 最后 30 秒；留空 = 整通",
    ),
    "qa_speaker": ("Speaker", "说话人"),
    "qa_speaker_info": (
        "Only when the call has speakers: 1 = whoever speaks first (usually the agent)",
        "仅在识别出说话人时生效：1 = 最先说话的人（通常是客服）",
    ),
    "qa_enabled": ("Enabled", "启用"),
    "qa_save": ("Save rule", "保存规则"),
    "qa_new": ("New rule", "新建规则"),
    "qa_delete": ("Delete rule", "删除规则"),
    "qa_import": ("Import rules (JSON)", "导入规则（JSON）"),
    "qa_import_info": (
        'A list such as [{{"name": "banned", "kind": "forbidden", "phrases": ["我不知道"]}}]; rules of the same name '
        "are updated",
        '形如 [{{"name": "banned", "kind": "forbidden", "phrases": ["我不知道"]}}] 的列表；同名规则会被更新',
    ),
    "qa_export": ("Export rules", "导出规则"),
    "qa_hotwords": ("Pass the rules' phrases to the engine as hotwords", "把规则中的词语作为热词交给识别引擎"),
    "qa_hotwords_info": (
        "Helps the engine recognize the words being checked (they count towards the hotword limit, after your own). "
        "Measured on the test recordings, noise and silence: the engine did not write rule phrases into calls that "
        "never said them (bench/RESULTS.md). Changing rules never re-transcribes: use “apply” below.",
        "帮助引擎识别要检查的词（计入热词上限，排在您自己的热词之后）。已在测试录音、噪声和静音上实测："
        "引擎没有在没说过这些词的通话里“听出”它们（见 bench/RESULTS.md）。修改规则不会重新识别，请用下方“重新检查”。",
    ),
    "qa_apply": ("Apply rules to existing records", "对已有记录重新检查"),
    "qa_apply_info": (
        "Checks the transcripts of the date range below again with today's rules (no re-transcription)",
        "用当前规则重新检查下方日期范围内的已有记录（不重新识别）",
    ),
    "qa_summary_title": ("Summary and flagged calls", "汇总与被标记的通话"),
    "qa_refresh": ("Show", "查看"),
    "qa_summary": (
        "**{checked}** calls checked · **{flagged}** flagged ({share})",
        "已检查 **{checked}** 通 · 被标记 **{flagged}** 通（{share}）",
    ),
    "qa_per_rule": ("Hits per rule", "各规则命中数"),
    "qa_flagged": (
        "Flagged calls, newest first — click one to see its hits",
        "被标记的通话（最新在前）——点击查看命中详情",
    ),
    "qa_call": ("Call", "通话详情"),
    "qa_call_idle": (
        "Click a flagged call above to see its sentences and hits.",
        "点击上方被标记的通话，查看句子和命中情况。",
    ),
    "qa_call_line": (
        "**{source}** · {time} · {duration} · record #{id}",
        "**{source}** · {time} · {duration} · 记录 #{id}",
    ),
    "qa_hits": ("Hits", "命中"),
    "qa_report_format": ("Report format", "报告格式"),
    "qa_report": ("Download report", "下载报告"),
    "qa_report_file": ("Report", "报告"),
    "qa_report_hint": (
        "One row per hit: file, time, rule, phrase, sentence — for the date range above.",
        "每个命中一行：文件、时间、规则、词语、句子——按上方日期范围。",
    ),
    "msg_rule_saved": ("Rule “{name}” saved.", "规则“{name}”已保存。"),
    "msg_rule_deleted": (
        "Rule deleted. Its earlier hits stay until you apply the rules again.",
        "规则已删除。已有的命中记录会保留，重新检查后才会消失。",
    ),
    "msg_rules_imported": (
        "Rules imported: {added} added, {updated} updated.",
        "已导入规则：新增 {added} 条，更新 {updated} 条。",
    ),
    "msg_rules_applied": ("{count} records checked again: {hits} hits.", "已重新检查 {count} 条记录：命中 {hits} 次。"),
    "msg_no_rules": ("There are no active rules yet.", "还没有启用的规则。"),
    "msg_report_empty": ("No hits in this date range.", "该日期范围内没有命中。"),
    "msg_bad_window": (
        "The time window must be two numbers, from and to, e.g. 0, 15 or -30, 0.",
        "时间段应为两个数字（起, 止），例如 0, 15 或 -30, 0。",
    ),
    "msg_qa_flagged": ("{count} quality hit(s): {rules}", "质检命中 {count} 处：{rules}"),
    "hist_qa": ("Quality checks", "质检"),
    "hist_qa_flagged": ("Flagged (any rule)", "被标记（任意规则）"),
    "hist_qa_line": ("**Quality checks:** {hits}", "**质检**：{hits}"),
    # ---- several engines loaded (--engines): the model selector, the header, emotion and sound-event tags
    "engine_select": ("Recognition model", "识别模型"),
    "engine_select_info": (
        "The models this server has loaded. Fun-ASR-Nano: most accurate (hotwords, dialects; best on a GPU). "
        "Paraformer: accurate Chinese, fast. SenseVoice: very fast, Chinese/English/Cantonese/Japanese/Korean, "
        "marks emotions and sounds (laughter, applause, music). Whisper base: the built-in fallback.",
        "本服务器已加载的模型。Fun-ASR-Nano：最准确（支持热词、方言，GPU 上最佳）；Paraformer：中文准确、速度快；"
        "SenseVoice：极快，支持中/英/粤/日/韩，并标出情绪和声音事件（笑声、掌声、音乐）；Whisper base：内置备用引擎。",
    ),
    "engines_line": ("**Loaded models:** {engines}", "**已加载模型**：{engines}"),
    "engine_default": ("default", "默认"),
    "tags_line": ("**Emotions and sounds:** {tags}", "**情绪与声音**：{tags}"),
    "sys_engines": ("Loaded engines", "已加载引擎"),
    "tag_HAPPY": ("happy", "开心"),
    "tag_SAD": ("sad", "伤心"),
    "tag_ANGRY": ("angry", "生气"),
    "tag_FEARFUL": ("fearful", "害怕"),
    "tag_DISGUSTED": ("disgusted", "厌恶"),
    "tag_SURPRISED": ("surprised", "惊讶"),
    "tag_BGM": ("music", "背景音乐"),
    "tag_Applause": ("applause", "掌声"),
    "tag_Laughter": ("laughter", "笑声"),
    "tag_Cry": ("crying", "哭声"),
    "tag_Sneeze": ("sneeze", "喷嚏"),
    "tag_Breath": ("breath", "呼吸声"),
    "tag_Cough": ("cough", "咳嗽"),
    "tag_Sing": ("singing", "歌声"),
    "tag_Speech_Noise": ("noise", "噪声"),
}


class _Values(dict):
    """format_map helper: unknown placeholders stay as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def t(key: str, lang: str, **values: Any) -> str:
    """A server-side message in the page's language."""
    en, zh = MESSAGES[key]
    text = zh if lang_of(lang) == "zh" else en
    return text.format_map(_Values(values)) if values else text


def ui(key: str) -> I18nData:
    """A static label, translated in the browser (fails at start-up on a misspelt key)."""
    if key not in MESSAGES:
        raise KeyError(f"no translation for {key!r}")
    return I18nData(key)


def gradio_i18n(**values: Any) -> gr.I18n:
    """Gradio's translation table. "zh" covers zh-CN, zh-TW and zh-HK browsers too (svelte-i18n falls back from
    a region to its language); placeholders such as {max_hotwords} are filled once from the settings."""
    en = {k: v[0].format_map(_Values(values)) for k, v in MESSAGES.items()}
    zh = {k: v[1].format_map(_Values(values)) for k, v in MESSAGES.items()}
    return gr.I18n(en=en, zh=zh, **{"zh-CN": zh})
