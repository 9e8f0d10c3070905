"""Hall appointments (只进一扇门、最多跑一次): halls, slots from opening hours and the calendar, bookings."""
