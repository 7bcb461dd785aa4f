-- The dispatch candidates and the resources list count each member's open orders for that member,
-- through the partial index of held orders by assignee (projection/store.py OPEN_ORDERS_OF). The
-- view that grouped every held order of the district for them is read by nothing now.
DROP VIEW member_open_orders;
