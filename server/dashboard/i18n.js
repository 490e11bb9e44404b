// The dashboard's texts in Chinese and English, the labels of warning kinds, states and roles, the
// API error codes' messages, and dates and numbers shown in China time (Asia/Shanghai). Every text
// the page shows comes from here; a key missing in one language is a bug the tests look for.

const TEXTS = {
  zh: {
    'app.title': '焊接作业监管平台',
    'app.subtitle': '动火作业一张图',
    'nav.overview': '总览',
    'nav.charts': '30 天统计',
    'nav.signout': '退出登录',
    'nav.lang': 'English',
    'nav.lang_title': '切换到英文',
    'signin.title': '监管账号登录',
    'signin.intro': '请输入管理员发放的监管账号登记码。本浏览器将生成一把不可导出的密钥，并用它向平台登记。',
    'signin.code': '登记码',
    'signin.submit': '登录',
    'signin.working': '正在登记…',
    'signin.insecure_title': '需要 HTTPS',
    'signin.insecure': '本页面不是通过安全连接（HTTPS，或本机 localhost）打开的，浏览器不提供所需的密钥功能。请通过 HTTPS 地址访问监管平台。',
    'signin.phone_role': '这是手机账号（{role}）的登记码，不能用于监管平台。该登记码已被使用，请联系管理员重新发放监管账号登记码。',
    'signin.no_code': '请输入登记码。',
    'signin.refresh_failed': '无法续期登录，请重新登录。',
    'signin.signed_in_as': '{person}（{role}）',
    'role.admin': '管理员',
    'role.monitor': '监管人员',
    'role.welder': '焊工',
    'role.inspector': '检查员',
    'role.supervisor': '现场负责人',
    'overview.map': '作业点分布',
    'overview.today': '今日数据',
    'overview.warnings': '预警',
    'overview.sites': '作业点列表',
    'map.none': '暂无预警',
    'map.some': '有预警',
    'map.severe': '严重预警',
    'map.empty': '本辖区暂无登记坐标的作业点。',
    'map.label': '辖区作业点地图，共 {n} 个作业点',
    'fig.starts_allowed': '扫码开机',
    'fig.starts_refused': '拒绝开机',
    'fig.inspections': '检查',
    'fig.permits': '作业票',
    'fig.warnings_open': '当日未处理预警',
    'fig.warnings_30': '30 天内未处理预警',
    'fig.none': '无',
    'warn.kind': '类型',
    'warn.state': '状态',
    'warn.all': '全部',
    'warn.more': '加载更多',
    'warn.empty': '没有符合条件的预警。',
    'warn.acknowledge': '确认',
    'warn.close': '关闭',
    'warn.machine': '焊机',
    'warn.welder': '焊工证',
    'warn.site': '作业点',
    'warn.at': '发生时间',
    'warn.raised': '预警时间',
    'warn.ack_by': '确认人',
    'warn.closed_by': '关闭人',
    'warn.note': '处理说明',
    'warn.new': '新预警',
    'warn.live_on': '实时',
    'warn.live_off': '连接中断，正在重连…',
    'warn.csv': '导出预警 CSV',
    'ledger.csv': '导出今日台账 CSV',
    'close.title': '关闭预警',
    'close.label': '处理说明（必填）',
    'close.submit': '确认关闭',
    'close.cancel': '取消',
    'close.need_note': '请填写处理说明。',
    'state.open': '待处理',
    'state.acknowledged': '已确认',
    'state.closed': '已关闭',
    'charts.title': '近 30 天统计',
    'charts.starts': '扫码开机与拒绝',
    'charts.warnings': '当日未处理预警',
    'charts.inspections': '检查次数',
    'charts.permits': '作业票',
    'charts.allowed': '允许',
    'charts.refused': '拒绝',
    'site.title': '作业点',
    'site.place': '所属区域',
    'site.machines': '焊机',
    'site.starts': '最近开机记录',
    'site.permits': '作业票',
    'site.warnings': '预警',
    'machine.title': '焊机',
    'machine.status': '状态',
    'machine.watch': '监管标记',
    'welder.title': '焊工',
    'welder.name': '姓名',
    'welder.kind': '证件类型',
    'welder.expires': '有效期至',
    'welder.status': '证件状态',
    'permit.title': '动火作业票',
    'permit.state': '状态',
    'permit.level': '级别',
    'permit.updated': '更新时间',
    'permit.checklist': '安全措施确认表',
    'permit.item': '项目',
    'permit.answer': '确认',
    'permit.note': '备注',
    'permit.signatures': '签字',
    'permit.step': '环节',
    'permit.person': '签字人',
    'permit.role': '签字角色',
    'permit.signed_at': '签字时间',
    'permit.present': '本人确认',
    'permit.steps': '流转记录',
    'permit.by': '操作人',
    'permit.raw': '平台存储的原始数据',
    'permit.vouched': '登记核验',
    'answer.confirmed': '已确认',
    'answer.not_applicable': '不适用',
    'start.time': '时间',
    'start.result': '结果',
    'start.allowed': '允许',
    'start.refused': '拒绝',
    'start.reasons': '原因',
    'start.permit': '作业票',
    'common.id': '编号',
    'common.name': '名称',
    'common.count': '数量',
    'common.loading': '加载中…',
    'common.back': '返回总览',
    'common.none': '—',
    'common.yes': '是',
    'common.no': '否',
    'common.retry': '重试',
    'common.district': '区县',
    'common.town': '镇街',
    'common.grid': '网格',
    'common.open_warnings': '未处理预警',
    'error.title': '出错了',
    'error.code': '错误代码',
    'error.network': '无法连接平台服务器，请检查网络。',
    'error.generic': '平台返回错误。',
    'error.platform.unknown': '未找到，或不在本账号辖区内。',
    'error.platform.out_of_scope': '该区域不在本账号辖区内。',
    'error.warnings.unknown': '未找到该预警，或不在本账号辖区内。',
    'error.warnings.bad_transition': '预警状态已变化，请刷新后再试。',
    'error.warnings.bad_note': '处理说明须为 1–1000 个字符。',
    'error.warnings.too_many_streams': '本账号打开的实时连接过多，请关闭其他窗口。',
    'error.auth.bad_enrolment_code': '登记码无效或已被使用。',
    'error.auth.forbidden': '本账号无权进行此操作。',
    'error.auth.bad_token': '登录已失效，请重新登录。',
    'error.auth.device_disabled': '本账号已被停用。',
    'error.auth.unknown_device': '平台不认识本浏览器的账号，请重新登录。',
    'error.auth.no_scope': '本账号没有辖区，请联系管理员。',
    'error.rate.limited': '请求过于频繁，请稍后再试。',
    'error.route.not_found': '平台尚不支持此功能（接口不存在）。',
    'error.server.database': '平台数据库出错，请稍后再试。',
    'error.browser.storage': '浏览器无法保存密钥（IndexedDB 不可用）。',
  },
  en: {
    'app.title': 'Welding Supervision Platform',
    'app.subtitle': 'Hot work on one map',
    'nav.overview': 'Overview',
    'nav.charts': '30 days',
    'nav.signout': 'Sign out',
    'nav.lang': '中文',
    'nav.lang_title': 'Switch to Chinese',
    'signin.title': 'Sign in with a monitoring account',
    'signin.intro': 'Enter the monitoring account code your administrator gave you. This browser makes a key that cannot be exported and enrols it with the platform.',
    'signin.code': 'Enrolment code',
    'signin.submit': 'Sign in',
    'signin.working': 'Enrolling…',
    'signin.insecure_title': 'HTTPS required',
    'signin.insecure': 'This page was not opened over a secure connection (HTTPS, or localhost on this machine), so the browser does not offer the key functions it needs. Open the platform through its HTTPS address.',
    'signin.phone_role': 'This is the code of a phone account ({role}) and cannot be used on the platform. The code is now used: ask the administrator for a monitoring account code.',
    'signin.no_code': 'Enter an enrolment code.',
    'signin.refresh_failed': 'The sign-in could not be renewed; sign in again.',
    'signin.signed_in_as': '{person} ({role})',
    'role.admin': 'administrator',
    'role.monitor': 'monitor',
    'role.welder': 'welder',
    'role.inspector': 'inspector',
    'role.supervisor': 'site supervisor',
    'overview.map': 'Sites',
    'overview.today': 'Today',
    'overview.warnings': 'Warnings',
    'overview.sites': 'Site list',
    'map.none': 'No warnings',
    'map.some': 'Warnings',
    'map.severe': 'Severe warnings',
    'map.empty': 'No site with coordinates in this area yet.',
    'map.label': 'Map of the area\'s sites, {n} sites',
    'fig.starts_allowed': 'Scan-starts',
    'fig.starts_refused': 'Refused starts',
    'fig.inspections': 'Inspections',
    'fig.permits': 'Permits',
    'fig.warnings_open': 'Today\'s open warnings',
    'fig.warnings_30': 'Open warnings, 30 days',
    'fig.none': 'none',
    'warn.kind': 'Kind',
    'warn.state': 'State',
    'warn.all': 'All',
    'warn.more': 'More',
    'warn.empty': 'No warnings match.',
    'warn.acknowledge': 'Acknowledge',
    'warn.close': 'Close',
    'warn.machine': 'Machine',
    'warn.welder': 'Licence',
    'warn.site': 'Site',
    'warn.at': 'Happened',
    'warn.raised': 'Raised',
    'warn.ack_by': 'Acknowledged by',
    'warn.closed_by': 'Closed by',
    'warn.note': 'Note',
    'warn.new': 'New warning',
    'warn.live_on': 'Live',
    'warn.live_off': 'Connection lost, reconnecting…',
    'warn.csv': 'Warnings CSV',
    'ledger.csv': 'Today\'s ledger CSV',
    'close.title': 'Close the warning',
    'close.label': 'What was done (required)',
    'close.submit': 'Close it',
    'close.cancel': 'Cancel',
    'close.need_note': 'Write what was done.',
    'state.open': 'Open',
    'state.acknowledged': 'Acknowledged',
    'state.closed': 'Closed',
    'charts.title': 'The last 30 days',
    'charts.starts': 'Scan-starts and refusals',
    'charts.warnings': 'Open warnings by day',
    'charts.inspections': 'Inspections',
    'charts.permits': 'Permits',
    'charts.allowed': 'Allowed',
    'charts.refused': 'Refused',
    'site.title': 'Site',
    'site.place': 'Place',
    'site.machines': 'Machines',
    'site.starts': 'Latest starts',
    'site.permits': 'Permits',
    'site.warnings': 'Warnings',
    'machine.title': 'Machine',
    'machine.status': 'Status',
    'machine.watch': 'Watch mark',
    'welder.title': 'Welder',
    'welder.name': 'Name',
    'welder.kind': 'Licence kind',
    'welder.expires': 'Valid until',
    'welder.status': 'Licence status',
    'permit.title': 'Hot work permit',
    'permit.state': 'State',
    'permit.level': 'Level',
    'permit.updated': 'Updated',
    'permit.checklist': 'Safety checklist',
    'permit.item': 'Item',
    'permit.answer': 'Answer',
    'permit.note': 'Note',
    'permit.signatures': 'Signatures',
    'permit.step': 'Step',
    'permit.person': 'Signed by',
    'permit.role': 'As',
    'permit.signed_at': 'Signed at',
    'permit.present': 'In person',
    'permit.steps': 'Steps',
    'permit.by': 'By',
    'permit.raw': 'The platform\'s stored data',
    'permit.vouched': 'Enrolled signer',
    'answer.confirmed': 'confirmed',
    'answer.not_applicable': 'not applicable',
    'start.time': 'Time',
    'start.result': 'Result',
    'start.allowed': 'Allowed',
    'start.refused': 'Refused',
    'start.reasons': 'Reasons',
    'start.permit': 'Permit',
    'common.id': 'ID',
    'common.name': 'Name',
    'common.count': 'Count',
    'common.loading': 'Loading…',
    'common.back': 'Back to the overview',
    'common.none': '—',
    'common.yes': 'yes',
    'common.no': 'no',
    'common.retry': 'Retry',
    'common.district': 'District',
    'common.town': 'Town',
    'common.grid': 'Grid',
    'common.open_warnings': 'Open warnings',
    'error.title': 'Something went wrong',
    'error.code': 'Error code',
    'error.network': 'The platform server cannot be reached; check the network.',
    'error.generic': 'The platform answered with an error.',
    'error.platform.unknown': 'Not found, or outside this account\'s area.',
    'error.platform.out_of_scope': 'That place lies outside this account\'s area.',
    'error.warnings.unknown': 'No such warning in this account\'s area.',
    'error.warnings.bad_transition': 'The warning changed meanwhile; reload and try again.',
    'error.warnings.bad_note': 'The note must be 1–1000 characters.',
    'error.warnings.too_many_streams': 'This account has too many live connections open; close other windows.',
    'error.auth.bad_enrolment_code': 'The enrolment code is wrong or already used.',
    'error.auth.forbidden': 'This account may not do that.',
    'error.auth.bad_token': 'The sign-in is no longer valid; sign in again.',
    'error.auth.device_disabled': 'This account has been disabled.',
    'error.auth.unknown_device': 'The platform does not know this browser\'s account; sign in again.',
    'error.auth.no_scope': 'This account has no area; ask the administrator.',
    'error.rate.limited': 'Too many requests; try again shortly.',
    'error.route.not_found': 'The platform does not offer this yet (no such route).',
    'error.server.database': 'The platform\'s database failed; try again shortly.',
    'error.browser.storage': 'The browser cannot keep the key (IndexedDB is unavailable).',
  },
};

/** Labels of the warning kinds this page knows; any other kind is shown as its code. */
const KINDS = {
  start_refused_expired_licence: { zh: '过期证件扫码被拒', en: 'Start refused: licence expired', severe: true },
  repeated_refusals: { zh: '同一焊机多次被拒', en: 'Repeated refusals at a machine', severe: true },
  start_far_from_machine: { zh: '扫码位置远离焊机', en: 'Scan far from the machine', severe: false },
  machine_two_places: { zh: '焊机异地启动', en: 'Machine at two distant places', severe: true },
  suspect_machine_started: { zh: '可疑或改装焊机被启动', en: 'Suspect or modified machine started', severe: true },
  licence_expiring: { zh: '证件即将到期', en: 'Licence expiring soon', severe: false },
  start_without_permit: { zh: '无作业票开机', en: 'Started without a required permit', severe: true },
  special_period_without_escalation: { zh: '特殊时段动火未升级审批', en: 'Special period without escalated permit', severe: true },
  session_open_too_long: { zh: '连续开机超过 24 小时', en: 'Machine on for over 24 h', severe: false },
  fire_watch_missing: { zh: '动火后监护未完成', en: 'Post-work fire watch not closed', severe: true },
};

const PERMIT_STATES = {
  draft: ['草稿', 'draft'], submitted: ['已提交', 'submitted'], checked: ['已现场确认', 'checked'],
  approved: ['已审批', 'approved'], active: ['作业中', 'active'], suspended: ['已暂停', 'suspended'],
  completed: ['已完工', 'completed'], closed: ['已关闭', 'closed'], rejected: ['已驳回', 'rejected'],
  cancelled: ['已取消', 'cancelled'], expired: ['已过期', 'expired'],
};

const ACTIONS = {
  draft: ['起草', 'draft'], edit: ['修改', 'edit'], submit: ['提交申请', 'submit'],
  site_check: ['现场确认', 'site check'], approve: ['审批', 'approve'], reject: ['驳回', 'reject'],
  start: ['开始作业', 'start'], suspend: ['暂停', 'suspend'], resume: ['恢复', 'resume'],
  complete: ['完工', 'complete'], close: ['关闭', 'close'], cancel: ['取消', 'cancel'], expire: ['过期', 'expire'],
};

/** Permit roles (the built-in profiles' signers and approvers); others are shown as their code. */
const PERMIT_ROLES = {
  applicant: ['申请人', 'applicant'], supervisor: ['现场负责人', 'site supervisor'], fire_watch: ['监火人', 'fire watch'],
  welder: ['焊工', 'welder'], leader_in_charge: ['主管领导', 'leader in charge'],
  safety_department: ['安全管理部门', 'safety management department'], unit_head: ['基层单位负责人', 'head of the operating unit'],
  company_safety_department: ['企业安全管理部门', 'company safety department'], project_manager: ['项目负责人', 'project manager'],
  project_safety_department: ['项目安全管理部门', 'project safety department'],
};

export function permitRoleLabel(role) {
  const pair = PERMIT_ROLES[role];
  return pair ? `${pair[current === 'zh' ? 0 : 1]} (${role})` : String(role);
}

/** A permit level: `level2` → 二级 / level 2; `special` → 特级 / special. */
export function levelLabel(level) {
  if (level === null || level === undefined || level === '') return t('common.none');
  const zh = { special: '特级', level1: '一级', level2: '二级', level3: '三级' };
  if (current === 'zh') return zh[level] ? `${zh[level]}动火` : String(level);
  const m = String(level).match(/^level(\d)$/);
  return m ? `level ${m[1]}` : String(level);
}

/** The label of a permit action (step); an unknown one is shown as its code. */
export function actionLabel(action) {
  const pair = ACTIONS[action];
  return pair ? pair[current === 'zh' ? 0 : 1] : String(action);
}

export const LANGS = ['zh', 'en'];
let current = 'zh';

/** The language from an earlier choice, else the browser's. */
export function initialLang() {
  try {
    const saved = localStorage.getItem('weldguard.lang');
    if (LANGS.includes(saved)) return saved;
  } catch (_) { /* storage off: use the browser's language */ }
  const nav = (navigator.language || 'zh').toLowerCase();
  return nav.startsWith('zh') ? 'zh' : 'en';
}

export function setLang(lang) {
  current = LANGS.includes(lang) ? lang : 'zh';
  document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
  try { localStorage.setItem('weldguard.lang', current); } catch (_) { /* not kept */ }
}

export function lang() { return current; }

/** The text of `key` in the current language, `{name}` replaced from `vars`. */
export function t(key, vars = {}) {
  const text = TEXTS[current][key] ?? TEXTS.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
}

export function hasText(key) { return key in TEXTS[current]; }

/** The label of a warning kind; an unknown kind is shown as its code. */
export function kindLabel(kind) {
  const known = KINDS[kind];
  return known ? known[current] : String(kind);
}

export function knownKinds() { return Object.keys(KINDS); }

/** Whether a kind counts as severe on the map (unknown kinds: not severe). */
export function kindIsSevere(kind) { return Boolean(KINDS[kind]?.severe); }

export function stateLabel(state) {
  const key = `state.${state}`;
  return hasText(key) ? t(key) : String(state);
}

export function permitStateLabel(state) {
  const pair = PERMIT_STATES[state];
  return pair ? pair[current === 'zh' ? 0 : 1] : String(state);
}

export function roleLabel(role) {
  const key = `role.${role}`;
  return hasText(key) ? t(key) : String(role);
}

/** The message of an API error code in the current language (a generic one when unknown). */
export function errorText(code) {
  const key = `error.${code}`;
  return hasText(key) ? t(key) : t('error.generic');
}

const CHINA_MS = 8 * 3600 * 1000;

/** Today's date in China (YYYY-MM-DD): China keeps UTC+8 all year. */
export function chinaDay(ms = Date.now(), offsetDays = 0) {
  return new Date(ms + CHINA_MS + offsetDays * 86400000).toISOString().slice(0, 10);
}

/** A time in China time, in the current language. */
export function formatTime(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(Number(ms))) return t('common.none');
  const format = new Intl.DateTimeFormat(current === 'zh' ? 'zh-CN' : 'en-GB', {
    timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', hour12: false,
  });
  return format.format(new Date(Number(ms)));
}

/** A YYYY-MM-DD day shown short (MM-DD or 12/07). */
export function shortDay(day) {
  const [, m, d] = String(day).split('-');
  return current === 'zh' ? `${Number(m)}月${Number(d)}日` : `${d}/${m}`;
}

export function formatNumber(n) {
  return new Intl.NumberFormat(current === 'zh' ? 'zh-CN' : 'en-GB').format(Number(n) || 0);
}

/** Every key of both tables, for the consistency test. */
export function allKeys() {
  return { zh: Object.keys(TEXTS.zh), en: Object.keys(TEXTS.en) };
}
