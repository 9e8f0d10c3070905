"""Errors of appointments; each carries its HTTP status and a stable code."""

from __future__ import annotations

from core.errors import AppError


class HallNotFound(AppError):
    status = 404
    code = "appointments.hall_not_found"
    message_zh = "未找到该办事大厅"
    message_en = "Hall not found"


class OtherHall(AppError):
    """A hall officer scanned a booking made for another hall."""

    status = 409
    code = "appointments.other_hall"
    message_zh = "该预约不是本大厅的预约（预约大厅：{hall}），请引导群众前往预约的大厅签到"
    message_en = "This appointment is for another hall ({hall}); please direct the citizen there to check in"


class NotServedHere(AppError):
    status = 404
    code = "appointments.not_served"
    message_zh = "该大厅不办理此事项"
    message_en = "This hall does not handle this service"


class SlotNotFound(AppError):
    status = 404
    code = "appointments.slot_not_found"
    message_zh = "未找到该预约时段"
    message_en = "Time slot not found"


class SlotInPast(AppError):
    status = 409
    code = "appointments.slot_past"
    message_zh = "该时段已过，请选择其他时间"
    message_en = "This time has passed; choose another"


class SlotFull(AppError):
    status = 409
    code = "appointments.slot_full"
    message_zh = "该时段已约满，请选择其他时间"
    message_en = "This time is fully booked; choose another"


class Closed(AppError):
    status = 409
    code = "appointments.closed"
    message_zh = "大厅当天不开放（非工作日或不在办公时间），请选择其他日期"
    message_en = "The hall is closed that day; choose another date"


class AlreadyBooked(AppError):
    status = 409
    code = "appointments.already_booked"
    message_zh = "您当天已预约该事项，如需改期请修改原预约"
    message_en = "You already have an appointment for this service that day; reschedule it instead"


class AppointmentNotFound(AppError):
    status = 404
    code = "appointments.not_found"
    message_zh = "未找到该预约"
    message_en = "Appointment not found"


class NotChangeable(AppError):
    status = 409
    code = "appointments.not_changeable"
    message_zh = "该预约已取消、已签到或已过期，不能再修改"
    message_en = "This appointment can no longer be changed"


class NotActive(AppError):
    # Its own answer for a booking the citizen cancelled or a reschedule replaced: "not in the
    # check-in window" would send them back at another time for a booking that no longer exists.
    status = 409
    code = "appointments.not_active"
    message_zh = "该预约已取消或已改约"
    message_en = "This appointment was cancelled or moved to another time"


class CancelledByHall(AppError):
    # A booking on a day the hall closed after it was made (a typhoon): neither "not in the
    # check-in window" nor "cancelled or moved" (the citizen did neither) tells them what to do.
    status = 409
    code = "appointments.cancelled_by_hall"
    message_zh = "大厅当日暂停办公，该预约已取消，请改约其他时间"
    message_en = "The hall is closed that day, so this appointment was cancelled; please choose another time"


class AlreadyCheckedIn(AppError):
    # Its own answer for a citizen who opens the QR code again after checking in: "not in the
    # check-in window" would send them away while they stand in the queue.
    status = 409
    code = "appointments.already_checked_in"
    message_zh = "您已签到，排队号 {queue_no}，请留意叫号"
    message_en = "You have checked in: your queue number is {queue_no}"


class BookingPaused(AppError):
    status = 403
    code = "appointments.booking_paused"
    message_zh = "近期多次预约未到，预约功能暂停至 {until}"
    message_en = "Booking is paused until {until} after repeated missed appointments"


class BadDate(AppError):
    status = 422
    code = "appointments.bad_date"
    message_zh = "只能预约今天起 {days} 天内的日期"
    message_en = "Only dates within {days} days from today can be booked"
