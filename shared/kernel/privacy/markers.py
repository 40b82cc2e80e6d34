"""The markers that replace personal data in free text (``[电话已隐去]``): each names what
was there, and none holds anything a rule matches (scrubbing again changes nothing)."""

REDACTED_ID = "[身份证号已隐去]"
REDACTED_PHONE = "[电话已隐去]"
REDACTED_ACCOUNT = "[账号已隐去]"
REDACTED_EMAIL = "[邮箱已隐去]"
REDACTED_ADDRESS = "[地址已隐去]"
REDACTED_NAME = "[姓名已隐去]"
REDACTED_PLATE = "[车牌已隐去]"
REDACTED_RECORD = "[病历号已隐去]"
#: What replaces a whole text a rule failed on (a defect of the scrubber's own): none of it kept.
REDACTED_TEXT = "[文字已隐去]"
